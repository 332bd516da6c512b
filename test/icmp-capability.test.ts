/**
 * An agent detects at start whether it can run ping, reports it (node detail, dashboard, /v1/monitor),
 * and on a node without ping every icmp check answers "ping is not installed on node X" at once.
 * Both branches run on every machine: one agent gets a PATH holding only node (no ping), the other the
 * machine's own PATH, whose answer is whatever this machine has.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TestAgent, TestController, http, tempDir, until } from './helpers/cluster.ts';
import { postForm } from './prober-fixtures.ts';

const INTERVAL = 5;
/** Told apart from the product's own detection: can this machine spawn ping at all? */
const HAS_PING = spawnSync('ping', ['-V'], { stdio: 'ignore' }).error === undefined;

let c: TestController;
let noping: TestAgent;
let withping: TestAgent;
let bin: string;

before(async () => {
  bin = await tempDir('outpost-nopath-');
  await symlink(process.execPath, join(bin, 'node'));
  c = await TestController.start({ config: { plugins: { prober: { apps: { caps: {} }, minInterval: INTERVAL, graceMs: 1500 } } } });
  [noping, withping] = await Promise.all([
    TestAgent.start(c, { name: 'noping', plugins: { prober: {} }, env: { PATH: bin } }),
    TestAgent.start(c, { name: 'withping', plugins: { prober: {} } }),
  ]);
  await until('both probe nodes live', async () => (await c.api('GET', '/api/v1/prober/groups')).body?.probe_nodes?.filter((n: { live: boolean }) => n.live).length === 2, 30_000);
});

after(async () => {
  await Promise.all([noping?.stop(), withping?.stop()]);
  await c?.stop();
  if (bin) await rm(bin, { recursive: true, force: true });
});

const monitor = (fields: Record<string, string | number>) => postForm(`${c.url}/operate_monitor`, { app_name: 'caps', protocol: 'icmp', interval: INTERVAL, timeout: 1, level: 4, record_ids: `${fields.group_id}01`, ips: '127.0.0.1', ...fields });

async function record(gid: number, ready: (r: any) => boolean): Promise<any> {
  return until(
    `group caps:${gid}`,
    async () => {
      const g = (await c.api('GET', '/api/v1/prober/groups')).body.groups.find((x: { group_id: number }) => x.group_id === gid);
      return g && ready(g.records[0]) ? g.records[0] : undefined;
    },
    40_000,
    250,
  );
}

const notInstalled = (node: string) => ({ status: 'error', res_time: 0, timing: null, cert_expires: null, error: `ping is not installed on node ${node}` });
const viewOf = (rec: any, node: string) => {
  const { at, ...rest } = rec.nodes[node];
  assert.ok(!Number.isNaN(Date.parse(at)));
  return rest;
};

test('the capability is detected at start and shown in node detail, /v1/monitor and the dashboard', async () => {
  const without = await c.node('noping');
  assert.equal(without.capabilities.icmp.available, false);
  assert.match(without.capabilities.icmp.reason, /^ping is not installed: no "ping" executable on PATH/);
  const own = await c.node('withping');
  assert.equal(own.capabilities.icmp.available, HAS_PING, JSON.stringify(own.capabilities));
  assert.equal((await noping.local('GET', '/v1/monitor')).body.capabilities.icmp.available, false);

  const login = await fetch(`${c.url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: c.url }, body: new URLSearchParams({ token: c.adminToken }) });
  assert.equal(login.status, 303);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
  const sections = (await http('GET', `${c.url}/dashboard/fragment`, { headers: { cookie } })).body.sections;
  const nodes: string = sections.find((s: { id: string }) => s.id === 's-nodes').html;
  const row = (name: string) => nodes.match(new RegExp(`<tr data-node="${name}"[\\s\\S]*?</tr>`))![0];
  assert.match(row('noping'), /<span class="chip muted" data-capability="icmp" title="ping is not installed: no &quot;ping&quot; executable on PATH[^"]*">icmp: no<\/span>/);
  assert.equal(/data-capability="icmp"/.test(row('withping')), !HAS_PING);
});

test('icmp on a node without ping: an error view at once, never a failure, never missing', async () => {
  for (const [gid, node] of [[1, 'noping'], [2, 'withping']] as const) assert.equal((await monitor({ group_id: gid, node_ips: node })).body.code, 1000);
  assert.equal((await monitor({ group_id: 3 })).body.code, 1000, 'level 4 on both nodes');

  const pinned = await record(1, (r) => r.nodes.noping);
  assert.deepEqual(viewOf(pinned, 'noping'), notInstalled('noping'));
  assert.equal(pinned.state, 'unknown', 'no node could probe it: no verdict, nothing called back');
  // The node answered (it is not missing) and its answer was not counted.
  const round = await until('a round of caps:1 with its node answering', async () => {
    const list = (await c.api('GET', '/api/v1/prober/results?group=caps:1')).body.results;
    return list.find((e: { missing: string[] }) => e.missing.length === 0);
  }, 40_000, 250);
  assert.deepEqual(round.nodes, ['noping']);
  assert.deepEqual(round.records.map((r: any) => [r.state, r.received, r.failures]), [['unknown', 0, 0]]);

  const own = await record(2, (r) => r.nodes.withping && (HAS_PING ? r.state !== 'unknown' : true));
  if (HAS_PING) assert.deepEqual([own.state, own.status, own.nodes.withping.status], ['up', 1, 1]);
  else assert.deepEqual(viewOf(own, 'withping'), notInstalled('withping'));

  const both = await record(3, (r) => r.nodes.noping && r.nodes.withping && (HAS_PING ? r.state !== 'unknown' : true));
  assert.deepEqual(viewOf(both, 'noping'), notInstalled('noping'));
  assert.equal(both.state, HAS_PING ? 'up' : 'unknown', 'the node that can ping decides alone');
  assert.equal(both.degraded, true);
});
