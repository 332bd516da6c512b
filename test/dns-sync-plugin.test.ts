/**
 * dns-sync's halves on the real runner (plugins/sdk/testing), with the dry-run provider and a
 * PowerDNS API on loopback (test/dns-sync-api-server.ts): the agent declares itself and the
 * controller's entry wins; a node's down moves its lines at once (events, writes) and its up brings
 * them back only after upAfter; a quiet period writes nothing; prober verdicts count; a failing
 * provider's lines go to the durable retry queue, are shown, and are written once it answers; a line
 * no node can serve raises one alert; the config stays on the controller; nothing secret anywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsSync from '../plugins/dns-sync/index.ts';
import prober from '../plugins/prober/index.ts';
import { testPlugin, type PluginHarness } from '../plugins/sdk/testing/index.ts';
import type { DnsSyncConfigInput } from '../plugins/dns-sync/config.ts';
import { PDNS_KEY, pdnsApi, type RRset } from './dns-sync-api-server.ts';

type H = PluginHarness<typeof dnsSync.spec>;
const T0 = Date.UTC(2024, 0, 1);
const HOUR = 3_600_000;
const COCOA = 'cocoa-secret-for-the-plugin-test';

/** node-1 is the harness's agent (its link goes up and down); node-2 is another enrolled node, up for an hour. */
const others = [{ id: 'n2', name: 'node-2', state: 'up' as const, connected: true, lastHeartbeat: T0, since: T0 - HOUR, address: '127.0.0.2' }];

function config(extra: Partial<DnsSyncConfigInput> = {}): DnsSyncConfigInput {
  return {
    cocoaSecret: COCOA,
    providers: { dry: { type: 'dry-run' } },
    services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'dry' }],
    nodes: { 'node-2': { ISPs: ['default', 'CU'], address: '192.0.2.2' } },
    upAfter: 30,
    ...extra,
  };
}

async function start(opts: { config?: DnsSyncConfigInput; agentConfig?: DnsSyncConfigInput; withProber?: boolean } = {}): Promise<H> {
  return testPlugin({
    plugin: dnsSync,
    config: opts.config ?? config(),
    agentConfig: opts.agentConfig ?? { self: { ISPs: ['CT'], address: '192.0.2.1' } },
    node: { id: 'n1', name: 'node-1', address: '127.0.0.1' },
    others,
    now: T0,
    with: [{ plugin: prober, config: {} }],
  });
}

const status = async (h: H) => (await h.inject({ method: 'GET', url: '/api/v1/dns-sync/status' })).json;
/** line → node, for the A lines of web. */
async function holders(h: H): Promise<Record<string, string | null>> {
  const s = await status(h);
  return Object.fromEntries(s.lines.filter((l: { recordType: string }) => l.recordType === 'A').map((l: { line: string; node: string | null }) => [l.line, l.node]));
}
const switched = (h: H) => h.events.filter((e) => e.event === 'dns.switched').map((e) => e.payload as { line: string; from: string | null; to: string; name: string; address: string });

test('the agent declares itself; lines follow the watchdog: down moves them at once, up brings them back after upAfter', async () => {
  const h = await start();
  try {
    await h.settle();
    assert.deepEqual(h.reports.map((r) => [r.type, r.data]), [['declared', { self: { ISPs: ['CT'], networkType: 'IPV4', address: '192.0.2.1' } }]]);
    // node-1 (declared by its agent: CT) has just come up; until it has been up for upAfter, node-2
    // (default, CU) serves every line, telecom as the default fallback.
    await h.until('an evaluation with the declaration', async () => (await holders(h)).telecom);
    assert.deepEqual(await holders(h), { default: 'node-2', telecom: 'node-2', unicom: 'node-2' });
    await h.clock.tick(31_000, 1_000);
    await h.until('node-1 takes telecom once up for upAfter', async () => (await holders(h)).telecom === 'node-1');
    assert.deepEqual(await holders(h), { default: 'node-2', telecom: 'node-1', unicom: 'node-2' });
    const seen = switched(h).map((s) => `${s.line} ${s.from}->${s.to} ${s.name} ${s.address}`);
    assert.deepEqual([...seen.slice(0, 3).sort(), seen[3]], [
      'default null->node-2 www.example.test 192.0.2.2',
      'telecom null->node-2 telecom.www.example.test 192.0.2.2',
      'unicom null->node-2 unicom.www.example.test 192.0.2.2',
      'telecom node-2->node-1 telecom.www.example.test 192.0.2.1',
    ]);

    // Quiet: evaluations (reconcile every 60 s) write nothing.
    const writes = () => (h.inject({ method: 'GET', url: '/api/v1/dns-sync/status' }) as Promise<{ json: { dryRun: Array<{ records: Array<{ writes: number }> }> } }>).then((r) => r.json.dryRun[0].records.reduce((n, x) => n + x.writes, 0));
    const before = await writes();
    await h.clock.tick(180_000, 10_000);
    await h.until('three reconciles ran', async () => (await status(h)).lastPass.at >= T0 + 180_000);
    assert.equal(await writes(), before);
    assert.equal(switched(h).length, 4);

    // node-1's link drops: node.down → telecom moves to node-2 (a default server) right away.
    h.setNode('down');
    await h.until('telecom moved', async () => (await holders(h)).telecom === 'node-2');
    await h.until('the switch announced', () => switched(h).length === 5);
    const moved = switched(h).at(-1)!;
    assert.equal(moved.from, 'node-1');
    assert.match((h.events.at(-1)!.payload as { reason: string }).reason, /node-1 is down; node-2 serves default/);
    assert.equal(h.metric('outpost_dns_sync_switches_total', { service: 'web', line: 'telecom' }), 3);

    // Back up: nothing moves for upAfter (30 s), then telecom returns to its owner.
    h.setNode('up');
    await h.clock.tick(20_000, 5_000);
    await h.until('an evaluation after the up', async () => (await status(h)).lastPass.at >= h.clock.now() - 20_000);
    assert.equal((await holders(h)).telecom, 'node-2', 'not before upAfter');
    await h.clock.tick(11_000, 1_000);
    await h.until('telecom back on node-1 after upAfter', async () => (await holders(h)).telecom === 'node-1');
    await h.until('the switch back announced', () => switched(h).length === 6);
    assert.equal(switched(h).at(-1)!.from, 'node-2');
    assert.match((h.events.at(-1)!.payload as { reason: string }).reason, /has been up for 30 s or more; it takes the line back/);
  } finally {
    await h.close();
  }
});

test('CocoaSyncer routes on the controller and the agent badge: answers, envelopes, gauges, and no secret', async () => {
  const h = await start();
  try {
    await h.until('an evaluation with the declaration', async () => (await holders(h)).telecom);
    const post = (url: string, body: unknown) => h.inject({ method: 'POST', url, body, admin: false });
    const wrong = await post('/v1/getClusterInfo', { cocoaSecret: 'not-the-secret' });
    assert.equal(wrong.status, 200);
    assert.deepEqual([wrong.json.statusCode, wrong.json.statusString, wrong.json.cocoaBasic.otherCocoaSyncer], [401, 'Unauthorized! You are not Cocoa!', null]);
    const right = await post('/v1/getClusterInfo', { cocoaSecret: COCOA });
    assert.equal(right.json.statusCode, 200);
    assert.equal(right.json.statusString, 'MafuMafu~');
    assert.deepEqual(Object.keys(right.json.cocoaBasic), ['apiPort', 'nodeName', 'nodeAddress', 'workMode', 'reverseProxy', 'otherCocoaSyncer', 'cocoaManagedService', 'timeout', 'createdAt', 'updatedAt', 'configImported']);
    assert.deepEqual(
      right.json.cocoaBasic.otherCocoaSyncer.map((n: Record<string, unknown>) => [n.nodeName, n.nodeAddress, n.ISPs, n.statusCode]),
      [['node-1', '192.0.2.1', ['CT'], 200], ['node-2', '192.0.2.2', ['default', 'CU'], 200]],
    );
    assert.equal(right.json.cocoaBasic.otherCocoaSyncer[0].watchDog, new Date(T0).toISOString());
    assert.ok(!right.text.includes(COCOA));
    // The leader takes no pushed cluster data, from anyone, before any secret check.
    for (const body of [{ cocoaSecret: COCOA, cocoaBasic: {} }, {}]) {
      const r = await post('/v1/updateClusterInfo', body);
      assert.deepEqual([r.status, r.json.statusCode, r.json.statusString], [200, 405, 'Not Allowed! Cocoa is soooo kawaii, Do you still sure you really want to eat Cocoa???']);
    }
    const malformed = await h.inject({ method: 'POST', url: '/v1/getClusterInfo', headers: { 'content-type': 'application/json' }, body: '{"cocoaSecret":', admin: false });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.statusCode, 400);
    assert.match(malformed.json.statusString, /^malformed JSON body/);
    assert.equal(malformed.json.cocoaBasic.nodeName, '');

    for (const url of ['/v1', '/v1/']) {
      const r = await h.inject({ method: 'GET', url, admin: false });
      assert.equal(r.status, 200);
      assert.match(r.text, /<title>CocoaSyncer - outpost<\/title>/);
    }
    const monitor = await h.inject({ method: 'GET', url: '/v1/monitor', admin: false });
    assert.deepEqual(monitor.json, { statusCode: 200, statusString: 'MafuMafu~', nodeName: 'outpost', workMode: 'leader', live: 2, total: 2 });
    const badge = await h.inject({ method: 'GET', url: '/v1/badge', admin: false });
    assert.match(badge.contentType, /^image\/svg\+xml/);
    assert.match(badge.text, /<title>outpost \| 2\/2<\/title>/);
    const page = await h.inject({ method: 'GET', url: '/v1/status', admin: false });
    assert.match(page.text, /<title>CocoaSyncer - outpost<\/title>/);
    assert.match(page.text, /telecom\.www\.example\.test/);

    // Each agent shows its own name, and the counts the controller sends it.
    await h.until('the agent badge has the counts', async () => /node-1 \| 2\/2/.test((await h.inject({ host: 'agent', method: 'GET', url: '/v1/badge', admin: false })).text));

    assert.equal(h.metric('cocoaSyncerStatus', { cocoaSyncerStatus: 'NodeNumber' }), 2);
    assert.equal(h.metric('cocoaSyncerStatus', { cocoaSyncerStatus: 'CocoaSyncerNodeOnlineCount' }), 2);
    assert.equal(h.metric('cocoaSyncerStatus', { cocoaSyncerStatus: 'CocoaSyncerCloudPlatformInfo' }), 1);
    await h.clock.tick(4000, 1000);
    assert.equal(h.metric('outpost_dns_sync_node_watchdog_seconds', { node: 'node-2' }), 4);
    h.setNode('down');
    await h.until('node-1 offline in the gauge', async () => h.metric('cocoaSyncerStatus', { cocoaSyncerStatus: 'CocoaSyncerNodeOfflineCount' }) === 1);
    assert.match((await h.inject({ method: 'GET', url: '/v1/badge', admin: false })).text, /outpost \| 1\/2/);

    // The native status needs the admin token, in the REST envelope.
    assert.deepEqual((await h.inject({ method: 'GET', url: '/api/v1/dns-sync/status', admin: false })).json.error.status, 401);
    for (const where of [JSON.stringify(h.logs), JSON.stringify(h.events), JSON.stringify(h.messages), h.metrics(), JSON.stringify((await status(h)))]) assert.ok(!where.includes(COCOA));
  } finally {
    await h.close();
  }
});

test('the config stays on the controller: a change there leaves the agent running on its own declaration', async () => {
  const h = await start();
  try {
    await h.until('node-1 declared', async () => (await status(h))?.nodes.length === 2);
    await h.configure(config({ nodeName: 'leader-2' }));
    await h.settle();
    assert.equal((await h.inject({ method: 'GET', url: '/v1/monitor', admin: false })).json.nodeName, 'leader-2');
    assert.deepEqual(h.reports.map((r) => r.data), [{ self: { ISPs: ['CT'], networkType: 'IPV4', address: '192.0.2.1' } }], 'no new declaration: the agent kept its own config');
    // The controller's entry for a node wins over what its agent declares.
    await h.configure(config({ nodes: { 'node-1': { ISPs: ['CMCC'], address: '192.0.2.11' }, 'node-2': { ISPs: ['default', 'CU'], address: '192.0.2.2' } } }));
    await h.until('node-1 as the controller declares it', async () => (await status(h)).nodes.find((n: { name: string }) => n.name === 'node-1')?.address === '192.0.2.11');
    const n1 = (await status(h)).nodes.find((n: { name: string }) => n.name === 'node-1');
    assert.deepEqual([n1.source, n1.ISPs], ['config', ['CMCC']]);
    // The agent's own config changes: it declares again.
    await h.configure({ self: { ISPs: ['CT', 'OverSea'], address: '192.0.2.1' } }, 'agent');
    await h.until('second declaration', () => h.reports.length === 2);
    assert.deepEqual(h.reports[1].data, { self: { ISPs: ['CT', 'OverSea'], networkType: 'IPV4', address: '192.0.2.1' } });
  } finally {
    await h.close();
  }
});

const probeChanged = (ip: string, to: 'up' | 'down') => ({ app_name: 'shop', group_id: '1', record_id: '12', ip, from: to === 'up' ? 'down' : 'up', to, status: to === 'up' ? 200 : 0, res_time: 3, round: new Date().toISOString(), degraded: false, failures: to === 'up' ? 0 : 1, received: 1, nodes: {} });

test("a service with a prober monitor: the quorum's down on a node's record moves its lines; its up brings them back after upAfter", async () => {
  const h = await start({ config: config({ services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'dry', probe: { app_name: 'shop', group_id: 1 } }] }) });
  try {
    await h.clock.tick(31_000, 1_000);
    await h.until('settled', async () => (await holders(h)).telecom === 'node-1');
    h.emit('probe.changed', probeChanged('192.0.2.2', 'down'));
    await h.until("node-2's lines moved to node-1", async () => (await holders(h)).unicom === 'node-1');
    assert.deepEqual(await holders(h), { default: 'node-1', telecom: 'node-1', unicom: 'node-1' });
    // Another group's verdict, or another address, changes nothing.
    h.emit('probe.changed', { ...probeChanged('192.0.2.2', 'up'), group_id: '2' });
    h.emit('probe.changed', probeChanged('192.0.2.99', 'up'));
    await h.clock.tick(40_000, 5_000);
    await h.until('a reconcile ran', async () => (await status(h)).lastPass.at >= h.clock.now() - 40_000);
    assert.equal((await holders(h)).unicom, 'node-1');
    h.emit('probe.changed', probeChanged('192.0.2.2', 'up'));
    await h.clock.tick(20_000, 5_000);
    assert.equal((await holders(h)).unicom, 'node-1', 'not before upAfter');
    await h.clock.tick(11_000, 1_000);
    await h.until('back on node-2', async () => (await holders(h)).unicom === 'node-2');
    assert.equal((await holders(h)).default, 'node-2');
  } finally {
    await h.close();
  }
});

test('no live node for a line: it keeps its value, one alert until a node can serve it again', async () => {
  const h = await start({ config: config({ nodes: {} }), agentConfig: { self: { ISPs: ['default'], address: '192.0.2.1' } } });
  try {
    // node-2 is up but declares nothing: only node-1 (its agent's declaration) serves.
    await h.until('default on node-1', async () => (await holders(h)).default === 'node-1');
    h.setNode('down');
    await h.until('the alert', () => h.events.some((e) => e.event === 'dns.alert'));
    const line = (await status(h)).lines[0];
    assert.deepEqual([line.node, line.address, line.alert], ['node-1', null, true]);
    assert.deepEqual(h.events.find((e) => e.event === 'dns.alert')!.payload, {
      service: 'web', line: 'default', recordType: 'A', name: 'www.example.test', holder: 'node-1',
      message: 'no live node can serve web default A; the record keeps pointing at node-1',
    });
    const dry = (await status(h)).dryRun[0].records[0];
    assert.deepEqual(dry.values, ['192.0.2.1'], 'the record is not changed');
    await h.clock.tick(130_000, 10_000);
    await h.until('reconciles ran', async () => (await status(h)).lastPass.at >= h.clock.now() - 60_000);
    assert.equal(h.events.filter((e) => e.event === 'dns.alert').length, 1, 'raised once');
    assert.equal(h.metric('outpost_dns_sync_lines_without_live_node'), 1);
    h.setNode('up');
    await h.until('served again', async () => !(await status(h)).lines[0].alert && h.metric('outpost_dns_sync_lines_without_live_node') === 0);
  } finally {
    await h.close();
  }
});

test('a provider that fails: its lines wait in the durable retry queue (shown, one event), retried with backoff, written once it answers', async () => {
  const rrsets: RRset[] = [];
  let failing = true;
  const api = await pdnsApi(rrsets, (req) => (failing && req.method === 'PATCH' ? { status: 503, text: `unavailable; the key was ${PDNS_KEY}` } : undefined));
  const h = await testPlugin({
    plugin: dnsSync,
    config: config({
      providers: { pdns: { type: 'pdns', url: api.url, apiKey: PDNS_KEY } },
      services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'pdns' }],
      upAfter: 0,
      retry: { baseDelay: 0.1, factor: 2, jitter: 0, maxDelay: 1 },
    }),
    agentConfig: { self: { ISPs: ['CT'], address: '192.0.2.1' } },
    node: { id: 'n1', name: 'node-1' },
    others,
    clock: 'real',
    with: [{ plugin: prober, config: {} }],
  });
  try {
    await h.until('three lines queued and announced', async () => (await status(h))?.pendingWrites === 3 && h.events.filter((e) => e.event === 'dns.failed').length === 3, 10_000);
    const pending = (await status(h)).lines.map((l: { pending: { attempt: number; error: string } | null }) => l.pending);
    assert.ok(pending.every((p: { error: string } | null) => p && /^provider "pdns" \(pdns\): PATCH zone example\.test\. .*HTTP 503 unavailable; the key was \*\*\*/.test(p.error)), JSON.stringify(pending));
    assert.equal(h.metric('outpost_dns_sync_pending_writes'), 3);
    // Retried with backoff: the attempt count grows, and each line announced its failure once.
    await h.until('retried', async () => (await status(h)).lines.every((l: { pending: { attempt: number } | null }) => (l.pending?.attempt ?? 0) >= 3), 10_000);
    const failed = h.events.filter((e) => e.event === 'dns.failed');
    assert.deepEqual(failed.map((e) => (e.payload as { line: string }).line).sort(), ['default', 'telecom', 'unicom']);
    assert.equal((failed[0].payload as { provider: string }).provider, 'pdns');
    assert.ok(h.metric('outpost_dns_sync_write_failures_total', { provider: 'pdns' })! >= 6);
    assert.ok(rrsets.length === 0);

    failing = false;
    await h.until('written once the provider answers', async () => (await status(h)).pendingWrites === 0, 10_000);
    assert.deepEqual(rrsets.map((r) => `${r.name} ${r.records.map((x) => x.content)}`).sort(), ['telecom.www.example.test. 192.0.2.1', 'unicom.www.example.test. 192.0.2.2', 'www.example.test. 192.0.2.2']);
    await h.until('the switches announced', () => h.events.filter((e) => e.event === 'dns.switched').length === 3);
    assert.equal(h.events.filter((e) => e.event === 'dns.failed').length, 3);
    const patches = api.requests.filter((r) => r.method === 'PATCH').length;
    await h.inject({ method: 'POST', url: '/api/v1/dns-sync/resync' });
    assert.equal(api.requests.filter((r) => r.method === 'PATCH').length, patches, 'nothing differs: nothing written');
    for (const where of [JSON.stringify(h.logs), JSON.stringify(h.events), JSON.stringify(await status(h)), h.metrics()]) assert.ok(!where.includes(PDNS_KEY) && !where.includes(COCOA));
  } finally {
    await h.close();
    await api.close();
  }
});

test('the retry queue survives a controller restart: a line still failing stays queued (no second failure event) until it is written', async () => {
  const rrsets: RRset[] = [];
  let failing = true;
  const api = await pdnsApi(rrsets, (req) => (failing && req.method === 'PATCH' ? { status: 503, text: 'unavailable' } : undefined));
  const cfg = config({
    providers: { pdns: { type: 'pdns', url: api.url, apiKey: PDNS_KEY } },
    services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'pdns', lines: ['default'] }],
    retry: { baseDelay: 600, factor: 2, jitter: 0, maxDelay: 600 },
  });
  const start = (dataDir?: string) => testPlugin({ plugin: dnsSync, config: cfg, halves: ['controller'], others, clock: 'real', dataDir, with: [{ plugin: prober, config: {} }] });
  const first = await start();
  try {
    await first.until('queued and announced', async () => (await status(first))?.pendingWrites === 1 && first.events.some((e) => e.event === 'dns.failed'));
    // Stopped, its data dir kept: a second controller starts on it.
    await first.controller.runner.stopAll();
    const second = await start(first.dataDir);
    try {
      // A re-sync resolves once an evaluation that started after it is done, so the first one is done too.
      assert.equal((await second.inject({ method: 'POST', url: '/api/v1/dns-sync/resync' })).json.pendingWrites, 1);
      const line = (await status(second)).lines[0];
      assert.equal(line.pending.attempt, 1);
      assert.ok(line.pending.dueAt > Date.now() + 500_000, 'due when the first controller scheduled it');
      assert.equal(second.events.filter((e) => e.event === 'dns.failed').length, 0, 'the queue still held it: not a new failure');
      failing = false;
      const r = await second.inject({ method: 'POST', url: '/api/v1/dns-sync/resync' });
      assert.deepEqual([r.json.pendingWrites, r.json.lastPass.switched, r.json.failing], [0, 1, []]);
      assert.deepEqual(rrsets.map((x) => x.records.map((y) => y.content)), [['192.0.2.2']]);
    } finally {
      await second.close();
    }
  } finally {
    await first.close();
    await api.close();
  }
});
