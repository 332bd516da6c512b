/** Every field of every link message is bounded; a violation closes that connection with a reason and is counted (issue 9, B7). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, http } from './helpers/cluster.ts';
import { openRawLink } from './helpers/raw-link.ts';
import { parsePrometheus, valueOf } from './helpers/prom.ts';
import { LINK_LIMITS, LINK_MAX_FRAME, linkPluginStatus, reportProblem } from '../runtime/link.ts';
import { AgentConfig } from '../agent/config.ts';

let c: TestController;
let node: { nodeId: string; credential: string };

before(async () => {
  c = await TestController.start();
  const r = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: await c.joinToken(), name: 'bounds', address: '10.0.0.1' } });
  assert.equal(r.status, 201, r.text);
  node = r.body;
});
after(async () => c?.stop());

const hello = (over: Record<string, unknown>) => ({ t: 'hello', nodeId: node.nodeId, version: '1', plugins: [], labels: {}, address: '10.0.0.2', ...over });
const manyLabels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

async function violations(): Promise<number> {
  const m = await http('GET', `${c.url}/metrics`);
  const fams = parsePrometheus(m.text);
  return (fams.get('outpost_link_violations_total')?.samples ?? []).reduce((sum, s) => sum + s.value, 0);
}

/** Sends msg on a fresh link and returns how the controller closed it. */
async function refused(msg: object | string, helloFirst = false): Promise<{ code: number; reason: string }> {
  const link = await openRawLink(c.url, node.credential);
  if (helloFirst) await link.hello(node.nodeId);
  link.send(msg);
  return link.closedWith;
}

test('oversized or malformed hello fields close the link with a reason naming the field, and nothing is stored', async () => {
  const before = await violations();
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ address: 'a'.repeat(1024 * 1024) }, /hello\.address/],
    [{ labels: manyLabels(20_000) }, /hello\.labels: at most 64 labels/],
    [{ labels: { ['k'.repeat(64)]: 'v' } }, /hello\.labels/],
    [{ labels: { k: 'v'.repeat(256) } }, /hello\.labels\.k/],
    [{ labels: { k: 1 } }, /hello\.labels\.k/],
    [{ version: 'v'.repeat(65) }, /hello\.version/],
    [{ plugins: Array.from({ length: 65 }, (_, i) => ({ name: `p${i}`, state: 'running' })) }, /hello\.plugins/],
    [{ plugins: [{ name: 'x', state: 'failed', error: 'e'.repeat(5000) }] }, /hello\.plugins\.0\.error/],
    [{ plugins: [{ name: 'x', state: 'exploded' }] }, /hello\.plugins\.0\.state/],
    [{ outboxFrom: -1 }, /hello\.outboxFrom/],
  ];
  for (const [over, re] of cases) {
    const closed = await refused(hello(over));
    assert.equal(closed.code, 4400, `${re} → ${JSON.stringify(closed)}`);
    assert.match(closed.reason, re);
    assert.ok(Buffer.byteLength(closed.reason) <= 123);
  }
  const n = await c.node(node.nodeId);
  assert.equal(n.address, '10.0.0.1');
  assert.deepEqual(n.labels, {});
  assert.equal(await violations(), before + cases.length);
});

test('heartbeats, reports and replies are bounded too', async () => {
  const before = await violations();
  const cases: Array<[object, RegExp]> = [
    [{ t: 'hb', seq: 1, ts: Date.now(), summary: { plugins: [{ name: 'n'.repeat(65), state: 'running' }] } }, /hb\.summary\.plugins\.0\.name/],
    [{ t: 'hb', seq: 1.5, ts: Date.now(), summary: {} }, /hb\.seq/],
    [{ t: 'hb', seq: 1, ts: Date.now(), summary: { outbox: 'many' } }, /hb\.summary\.outbox/],
    [{ t: 'report', seq: 1, plugin: 'p'.repeat(65), type: 'x', data: {}, ts: 1 }, /report\.plugin/],
    [{ t: 'reply', id: 'i'.repeat(65), ok: true }, /reply\.id/],
    [{ t: 'reply', id: 'x', ok: false, error: 'e'.repeat(2000) }, /reply\.error/],
    [{ t: 'shout' }, /unknown.*t|t:/],
  ];
  for (const [msg, re] of cases) {
    const closed = await refused(msg, true);
    assert.equal(closed.code, 4400, `${JSON.stringify(msg).slice(0, 80)} → ${JSON.stringify(closed)}`);
    assert.match(closed.reason, re);
  }
  // Valid fields but a frame over the heartbeat limit (unknown fields are dropped, not stored, but they still cost bytes).
  const fat = await refused({ t: 'hb', seq: 1, ts: Date.now(), summary: {}, padding: 'x'.repeat(LINK_LIMITS.controlBytes) }, true);
  assert.equal(fat.code, 4413);
  assert.match(fat.reason, /hb frame is \d+ bytes, limit 65536/);
  // Any frame over the largest a report may have is refused before it is even parsed (5 MiB, as in the issue).
  const huge = await refused(hello({ address: 'a'.repeat(5 * 1024 * 1024) }));
  assert.equal(huge.code, 4413);
  assert.match(huge.reason, /frame is 52\d{5} bytes, limit 4210688/);
  const report = await refused({ t: 'report', seq: 1, plugin: 'server-stats', type: 'sample', data: 'x'.repeat(LINK_MAX_FRAME), ts: 1 }, true);
  assert.equal(report.code, 4413);
  assert.equal(await violations(), before + cases.length + 3);
  const m = parsePrometheus((await http('GET', `${c.url}/metrics`)).text);
  assert.ok((valueOf(m, 'outpost_link_violations_total', { type: 'report', reason: 'invalid' }) ?? 0) >= 1);
  assert.ok((valueOf(m, 'outpost_link_violations_total', { type: 'hb', reason: 'too_large' }) ?? 0) >= 1);
  assert.equal(valueOf(m, 'outpost_link_violations_total', { type: 'unknown', reason: 'too_large' }), 2);
  assert.equal((await http('GET', `${c.url}/healthz`)).status, 200);
});

test('a hello at every limit is welcomed and stored as sent', async () => {
  const link = await openRawLink(c.url, node.credential);
  const labels = Object.fromEntries(Array.from({ length: LINK_LIMITS.labels }, (_, i) => [`${'k'.repeat(LINK_LIMITS.labelKey - 3)}${String(i).padStart(3, '0')}`, 'v'.repeat(LINK_LIMITS.labelValue)]));
  const address = 'a'.repeat(LINK_LIMITS.address);
  const welcome = new Promise<any>((resolve) => link.ws.on('message', (m) => resolve(JSON.parse(String(m)))));
  link.send(hello({ labels, address, version: 'v'.repeat(LINK_LIMITS.version), plugins: [{ name: 'x', state: 'failed', error: 'e'.repeat(LINK_LIMITS.error) }] }));
  assert.equal((await welcome).t, 'welcome');
  const n = await c.node(node.nodeId);
  assert.equal(n.address, address);
  assert.equal(Object.keys(n.labels).length, LINK_LIMITS.labels);
  link.ws.close();
});

test('the agent never sends what the link refuses: config, reports, plugin errors', () => {
  const bad = AgentConfig.safeParse({ labels: manyLabels(65) });
  assert.equal(bad.success, false);
  assert.match(JSON.stringify(bad.error?.issues), /at most 64 labels/);
  assert.equal(AgentConfig.safeParse({ address: 'a'.repeat(256) }).success, false);
  assert.equal(AgentConfig.safeParse({ labels: manyLabels(64) }).success, true);
  assert.match(reportProblem('prober', 'results', { blob: 'x'.repeat(LINK_LIMITS.dataBytes) }) ?? '', /prober\.results is \d+ bytes of data; the link carries at most 4194304/);
  assert.equal(reportProblem('prober', 'results', { ok: true }), undefined);
  const status = linkPluginStatus(Array.from({ length: 70 }, (_, i) => ({ name: `p${i}`, state: 'failed' as const, error: 'e'.repeat(9000) })));
  assert.equal(status.length, LINK_LIMITS.plugins);
  assert.equal(status[0].error!.length, LINK_LIMITS.error);
});
