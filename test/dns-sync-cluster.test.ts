/**
 * dns-sync across real processes: a controller and three agents on loopback, the pdns provider against
 * a PowerDNS API on loopback (test/dns-sync-api-server.ts). Two agents declare themselves in their own
 * config, the controller's config declares the third. SIGKILL an agent: its lines move to a survivor
 * (dns.switched in /api/v1/events and as a webhook); bring it back: they return only once it has been
 * up for upAfter; a quiet period writes nothing; CocoaSyncer's routes answer on the real servers; and
 * no secret shows in any answer, log line or agent file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { http, sleep, TestAgent, TestController, until } from './helpers/cluster.ts';
import { Receiver } from './helpers/receiver.ts';
import { browser, csrfOf } from './helpers/browser.ts';
import { PDNS_KEY, pdnsApi, type RRset } from './dns-sync-api-server.ts';

const COCOA = 'cocoa-secret-of-the-cluster-test';
const UP_AFTER_S = 3;
const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '192.0.2.3';

let c: TestController;
const agents: Record<string, TestAgent> = {};
let api: Awaited<ReturnType<typeof pdnsApi>>;
const rrsets: RRset[] = [];
let receiver: Receiver;
/** Every answer the test saw, searched for secrets at the end. */
const answers: string[] = [];

const dnsConfig = () => ({
  cocoaSecret: COCOA,
  nodeName: 'leader',
  providers: { pdns: { type: 'pdns', url: api.url, apiKey: PDNS_KEY } },
  services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'pdns', ttl: 60 }],
  nodes: { 'edge-c': { ISPs: ['default', 'OverSea'], address: C } },
  upAfter: UP_AFTER_S,
  reconcileInterval: 5,
  retry: { baseDelay: 0.2, factor: 2, jitter: 0, maxDelay: 2 },
});

/** What a name answers in the fake PowerDNS. */
const value = (name: string) => rrsets.find((r) => r.name === `${name}.` && r.type === 'A')?.records.map((x) => x.content).join(',');
const patches = () => api.requests.filter((r) => r.method === 'PATCH').length;
const status = async () => {
  const r = await c.api('GET', '/api/v1/dns-sync/status');
  answers.push(r.text);
  return r.body;
};

before(async () => {
  api = await pdnsApi(rrsets);
  receiver = await Receiver.start();
  c = await TestController.start({ config: { plugins: { prober: { apps: {} }, 'dns-sync': {} } }, env: { OUTPOST_LOG_LEVEL: 'debug' } });
  const self = (ISPs: string[], address: string) => ({ 'dns-sync': { self: { ISPs, address } } });
  // No prober on the agents: dns-sync's dependency on it is the controller's (events live there).
  agents.a = await TestAgent.start(c, { name: 'edge-a', plugins: self(['default', 'CT'], A), env: { OUTPOST_LOG_LEVEL: 'debug' } });
  agents.b = await TestAgent.start(c, { name: 'edge-b', plugins: self(['CU', 'CMCC'], B), env: { OUTPOST_LOG_LEVEL: 'debug' } });
  agents.c = await TestAgent.start(c, { name: 'edge-c', plugins: { 'dns-sync': {} }, env: { OUTPOST_LOG_LEVEL: 'debug' } });
  const put = await c.api('PUT', '/api/v1/plugins/dns-sync/config', dnsConfig());
  assert.equal(put.status, 200, put.text);
  answers.push(put.text);
  const sub = await c.api('POST', '/api/v1/webhooks', { url: receiver.url, events: ['dns.*'] });
  assert.equal(sub.status, 201, sub.text);
});

after(async () => {
  for (const a of Object.values(agents)) await a.stop();
  await c?.stop();
  await receiver?.close();
  await api?.close();
});

test('lines settle on their owners; a quiet period writes nothing', async () => {
  await until('every line on its owner', async () => value('telecom.www.example.test') === A && value('unicom.www.example.test') === B && value('mobile.www.example.test') === B && value('oversea.www.example.test') === C, 30_000);
  assert.ok([A, C].includes(value('www.example.test')!), 'default on a default server');
  const s = await status();
  assert.deepEqual(s.nodes.map((n: { name: string; source: string; up: boolean }) => `${n.name} ${n.source} ${n.up}`), ['edge-a agent true', 'edge-b agent true', 'edge-c config true']);
  const before = { patches: patches(), gets: api.requests.length };
  // One reconcile at least (every 5 s): it reads, finds nothing different, writes nothing.
  await sleep(6000);
  assert.ok(api.requests.length > before.gets, 'the reconcile read the zone');
  assert.equal(patches(), before.patches, 'nothing written while nothing changes');
});

test('SIGKILL an agent: its lines move to a survivor at once; back up, they return only after upAfter', async () => {
  await agents.b.kill('SIGKILL');
  const killedAt = Date.now();
  await until('unicom and mobile on edge-a', async () => value('unicom.www.example.test') === A && value('mobile.www.example.test') === A, 15_000);
  const tookMs = Date.now() - killedAt;
  // The watchdog here beats every 200 ms and calls a node down after 3 missed beats.
  assert.ok(tookMs < 5000, `moved ${tookMs} ms after the kill`);
  assert.equal(value('telecom.www.example.test'), A, 'other lines untouched');
  assert.equal(value('oversea.www.example.test'), C);

  type Ev = { event: string; ts: string; data: Record<string, unknown> };
  const switchedEvents = async () => ((await c.api('GET', '/api/v1/events?limit=200')).body.events as Ev[]).filter((e) => e.event === 'dns.switched');
  const moved = await until('the switches in the event log', async () => {
    const m = (await switchedEvents()).filter((e) => Date.parse(e.ts) > killedAt && e.data.from === 'edge-b');
    return m.length === 2 ? m : undefined;
  });
  assert.deepEqual(moved.map((e) => `${e.data.line} ${e.data.to} ${e.data.name} ${e.data.address}`).sort(), ['mobile edge-a mobile.www.example.test 192.0.2.1', 'unicom edge-a unicom.www.example.test 192.0.2.1']);
  assert.match(String(moved[0].data.reason), /^edge-b is down; edge-a serves default \(no live node serves (unicom|mobile)\)$/);
  await until('the webhook', () => receiver.requests.filter((r) => r.event === 'dns.switched' && r.json?.data?.from === 'edge-b').length === 2);

  await agents.b.restart();
  const node = await until('edge-b up again', async () => {
    const n = await c.node(agents.b.nodeId);
    return n?.state === 'up' && n.since ? n : undefined;
  }, 20_000);
  // Within upAfter of coming up, nothing moves.
  const hold = node.since + UP_AFTER_S * 1000 - 700 - Date.now();
  if (hold > 0) await sleep(hold);
  assert.equal(value('unicom.www.example.test'), A, 'not back before upAfter');
  await until('unicom and mobile back on edge-b', async () => value('unicom.www.example.test') === B && value('mobile.www.example.test') === B, 15_000);
  const back = await until('the switches back in the event log', async () => {
    const m = (await switchedEvents()).filter((e) => Date.parse(e.ts) > killedAt && e.data.to === 'edge-b' && e.data.from === 'edge-a');
    return m.length === 2 ? m : undefined;
  });
  for (const e of back) assert.ok(Date.parse(e.ts) >= node.since + UP_AFTER_S * 1000, `switched back ${Date.parse(e.ts) - node.since} ms after edge-b came up`);
  assert.match(String(back[0].data.reason), /edge-b serves (unicom|mobile) and has been up for 3 s or more; it takes the line back from edge-a/);
});

test("CocoaSyncer's routes on the controller and an agent's badge, over the real servers", async () => {
  const get = async (url: string) => {
    const r = await http('GET', url);
    answers.push(r.text);
    return r;
  };
  for (const path of ['/', '/v1', '/v1/']) {
    const r = await get(c.url + path);
    assert.equal(r.status, 200, path);
    // `/` is the dashboard (its sign-in page here): 200 for old liveness probes as well.
    if (path !== '/') assert.match(r.text, /CocoaSyncer - leader/);
  }
  assert.deepEqual((await get(`${c.url}/v1/monitor`)).body, { statusCode: 200, statusString: 'MafuMafu~', nodeName: 'leader', workMode: 'leader', live: 3, total: 3 });
  const wrong = await http('POST', `${c.url}/v1/getClusterInfo`, { body: { cocoaSecret: 'wrong-secret-123' } });
  assert.deepEqual([wrong.status, wrong.body.statusCode], [200, 401]);
  const info = await http('POST', `${c.url}/v1/getClusterInfo`, { body: { cocoaSecret: COCOA } });
  answers.push(info.text);
  assert.equal(info.body.statusCode, 200);
  assert.equal(info.body.cocoaBasic.apiPort, c.port);
  assert.equal(info.body.cocoaBasic.nodeAddress, c.url);
  assert.deepEqual(info.body.cocoaBasic.otherCocoaSyncer.map((n: Record<string, unknown>) => [n.nodeName, n.nodeAddress, n.statusCode]), [['edge-a', A, 200], ['edge-b', B, 200], ['edge-c', C, 200]]);
  assert.ok(Date.now() - Date.parse(info.body.cocoaBasic.otherCocoaSyncer[0].watchDog) < 5000, 'watchDog is the last heartbeat');
  const update = await http('POST', `${c.url}/v1/updateClusterInfo`, { body: { cocoaSecret: COCOA, cocoaBasic: { otherCocoaSyncer: [] } } });
  assert.deepEqual([update.status, update.body.statusCode], [200, 405]);
  const malformed = await http('POST', `${c.url}/v1/getClusterInfo`, { raw: '{"cocoaSecret"', headers: { 'content-type': 'application/json' } });
  assert.deepEqual([malformed.status, malformed.body.statusCode, Object.keys(malformed.body)], [400, 400, ['statusCode', 'statusString', 'cocoaBasic']]);

  const badge = await get(`${c.url}/v1/badge`);
  assert.match(badge.headers.get('content-type')!, /^image\/svg\+xml/);
  assert.match(badge.text, /leader \| 3\/3/);
  await until('the agent badge shows the cluster', async () => /edge-a \| 3\/3/.test((await get(`http://127.0.0.1:${agents.a.port}/v1/badge`)).text));
  const page = await get(`${c.url}/v1/status`);
  assert.match(page.text, /<title>CocoaSyncer - leader<\/title>/);
  assert.match(page.text, /unicom\.www\.example\.test/);

  const metrics = await get(`${c.url}/metrics`);
  assert.match(metrics.text, /^cocoaSyncerStatus\{cocoaSyncerStatus="NodeNumber"\} 3$/m);
  assert.match(metrics.text, /^cocoaSyncerStatus\{cocoaSyncerStatus="CocoaSyncerNodeOnlineCount"\} 3$/m);
  assert.match(metrics.text, /^outpost_dns_sync_node_watchdog_seconds\{node="edge-a"\} /m);
  assert.match(metrics.text, /^outpost_dns_sync_switches_total\{line="unicom",service="web"\} [2-9]$/m);
  assert.match(metrics.text, /^outpost_dns_sync_pending_writes 0$/m);

  const cfg = await c.api('GET', '/api/v1/plugins/dns-sync/config');
  answers.push(cfg.text);
  assert.equal(cfg.body.config.cocoaSecret, '***');
  assert.equal(cfg.body.config.providers.pdns.apiKey, '***');
});

test('the DNS panel in a dashboard session: every line with its node, and Re-sync now with the CSRF token', async () => {
  const b = browser(c.url);
  const cookie = await b.signIn(c.adminToken);
  const page = (await b.go('GET', '/', { cookie })).text;
  answers.push(page);
  assert.match(page, /<tr data-line="pdns:www\.example\.test\/unicom\/A" data-node="edge-b" data-pending="no">/);
  assert.match(page, /id="dns-sync-resync"/);
  const csrf = csrfOf(page);
  const refused = await b.go('POST', '/api/v1/dns-sync/resync', { cookie, headers: { origin: c.url } });
  assert.equal(refused.status, 403);
  const r = await b.go('POST', '/api/v1/dns-sync/resync', { cookie, headers: { origin: c.url, 'x-outpost-csrf': csrf } });
  answers.push(r.text);
  assert.equal(r.status, 200, r.text);
  const res = JSON.parse(r.text);
  assert.deepEqual([res.lastPass.kind, res.lastPass.written, res.pendingWrites, res.failing], ['full', 0, 0, []]);
});

test('no secret in any answer, log line or agent file; the agents never got the controller config', async () => {
  const events = await c.api('GET', '/api/v1/events?limit=1000');
  const panel = await c.api('GET', '/api/v1/dns-sync/status');
  const texts = [...answers, events.text, panel.text, JSON.stringify(receiver.requests), c.proc.output(), ...Object.values(agents).map((a) => a.proc.output())];
  for (const a of Object.values(agents)) {
    for (const f of await readdir(a.dataDir, { recursive: true })) {
      const text = await readFile(join(a.dataDir, f), 'utf8').catch(() => '');
      texts.push(text);
    }
  }
  for (const secret of [COCOA, PDNS_KEY]) {
    const found = texts.findIndex((t) => t.includes(secret));
    assert.equal(found, -1, `a secret in text ${found}: ${texts[found]?.slice(Math.max(0, (texts[found]?.indexOf(secret) ?? 0) - 200), (texts[found]?.indexOf(secret) ?? 0) + 50)}`);
  }
  // The agents still run on their own declarations.
  assert.deepEqual((await c.api('GET', '/api/v1/dns-sync/status')).body.nodes.map((n: { source: string }) => n.source), ['agent', 'agent', 'config']);
});
