/**
 * CocoaSyncer's surfaces as the leader answers them: getClusterInfo (exact JSON and key order, 401 with
 * the zero cocoaBasic, rate limit), updateClusterInfo (405 first), badge, status page, gauges kept
 * current, and no secret in any of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dnsSyncConfig } from '../plugins/dns-sync/config.ts';
import { Secret, secretsIn } from '../plugins/sdk/secret.ts';
import { clusterView, type ViewFacts } from '../plugins/dns-sync/cocoa/view.ts';
import { getClusterInfo, updateClusterInfo } from '../plugins/dns-sync/cocoa/cluster-info.ts';
import { FailureLimiter } from '../plugins/dns-sync/cocoa/auth.ts';
import { badgeAnswer } from '../plugins/dns-sync/cocoa/badge.ts';
import { statusAnswer } from '../plugins/dns-sync/cocoa/status-page.ts';
import { registerDnsSyncMetrics } from '../plugins/dns-sync/cocoa/metrics.ts';
import { lineStatusRows } from '../plugins/dns-sync/status.ts';
import { runPass } from '../plugins/dns-sync/reconcile.ts';
import { createProviders } from '../plugins/dns-sync/providers/index.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';

const SECRET = 'cocoa-secret-for-tests-42';
const STORED = new Secret(SECRET);
const config = dnsSyncConfig.parse({
  cocoaSecret: SECRET,
  nodeName: 'leader-1',
  providers: {
    'pdns-main': { type: 'pdns', url: 'http://127.0.0.1:1', apiKey: 'pdns-api-key-SECRET-1' },
    ali: { type: 'aliyun', accessKey: 'LTAI-ACCESS-KEY-SECRET-2', accessSecret: 'ali-access-secret-SECRET-3', endpoint: 'http://127.0.0.1:1' },
    cf: { type: 'cloudflare', token: 'cf-token-SECRET-4', endpoint: 'http://127.0.0.1:1' },
    dry: { type: 'dry-run' },
  },
  services: [
    { serviceName: '测试', domain: 'example.test', record: 'test', platformProvider: 'dry' },
    { serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'dry' },
  ],
  nodes: {
    'node-b': { ISPs: ['CU', 'CMCC', 'CNEdu'], address: '192.0.2.2' },
    'node-a': { ISPs: ['default', 'CT', 'OverSea'], address: '192.0.2.1' },
  },
});

const T0 = Date.UTC(2023, 8, 7, 7, 52, 46);
const facts = (watchdog: ViewFacts['watchdog']): ViewFacts => ({ apiPort: 7070, nodeAddress: 'http://127.0.0.1:7070', downAfterMs: 6000, createdAt: T0, updatedAt: T0 + 1000, watchdog });
const view = clusterView(config, facts({ 'node-a': { up: true, lastBeat: Date.UTC(2023, 8, 18, 14, 54, 22, 76) }, 'node-b': { up: false, lastBeat: Date.UTC(2023, 8, 18, 14, 40, 11, 11) } }));

const ZERO =
  '{"apiPort":0,"nodeName":"","nodeCode":"","nodeAddress":"","workMode":"","cocoaSecret":"","reverseProxy":false,"otherCocoaSyncer":null,"cocoaManagedService":null,' +
  '"cloudPlatformInfo":null,"timeout":0,"DataBaseType":"","Dsn":"","createdAt":"0001-01-01T00:00:00Z","updatedAt":"0001-01-01T00:00:00Z","configImported":false}';

test('getClusterInfo with a wrong, missing or malformed secret: HTTP 200, statusCode 401, the zero cocoaBasic, exactly', () => {
  for (const body of [{ cocoaSecret: 'nope' }, {}, undefined, 'cocoa', [SECRET], { cocoaSecret: 42 }, { cocoaSecret: `${SECRET} ` }]) {
    const r = getClusterInfo(view, body, STORED);
    assert.equal(r.status, 200);
    assert.equal(JSON.stringify(r.json), `{"statusCode":401,"statusString":"Unauthorized! You are not Cocoa!","cocoaBasic":${ZERO}}`, JSON.stringify(body));
  }
});

test('getClusterInfo with the right secret: the original key order, workMode leader, every node with 200/504 and its watchdog, no credential', () => {
  const r = getClusterInfo(view, { cocoaSecret: SECRET }, STORED);
  const svc = '[{"serviceName":"测试","domain":"example.test","record":"test","platformProvider":"dry"},{"serviceName":"web","domain":"example.test","record":"www","platformProvider":"dry"}]';
  assert.equal(
    JSON.stringify(r.json),
    '{"statusCode":200,"statusString":"MafuMafu~","cocoaBasic":{"apiPort":7070,"nodeName":"leader-1","nodeAddress":"http://127.0.0.1:7070","workMode":"leader","reverseProxy":false,"otherCocoaSyncer":[' +
      `{"nodeName":"node-a","nodeAddress":"192.0.2.1","workMode":"follower","ISPs":["default","CT","OverSea"],"networkType":"IPV4","statusCode":200,"watchDog":"2023-09-18T14:54:22.076Z","cocoaManagedService":${svc}},` +
      `{"nodeName":"node-b","nodeAddress":"192.0.2.2","workMode":"follower","ISPs":["CU","CMCC","CNEdu"],"networkType":"IPV4","statusCode":504,"watchDog":"2023-09-18T14:40:11.011Z","cocoaManagedService":${svc}}],` +
      `"cocoaManagedService":${svc},"timeout":1,"createdAt":"2023-09-07T07:52:46.000Z","updatedAt":"2023-09-07T07:52:47.000Z","configImported":true}}`,
  );
  // A node the watchdog never saw: lost, Go's zero time.
  const unseen = clusterView(config, facts({}));
  const nodes = (getClusterInfo(unseen, { cocoaSecret: SECRET }, STORED).json as any).cocoaBasic.otherCocoaSyncer;
  assert.deepEqual(nodes.map((n: any) => [n.statusCode, n.watchDog]), [[504, '0001-01-01T00:00:00Z'], [504, '0001-01-01T00:00:00Z']]);
});

test('no cocoaSecret configured: nobody gets in, not even with an empty secret', () => {
  for (const body of [{ cocoaSecret: '' }, {}, undefined]) assert.equal((getClusterInfo(view, body, undefined).json as any).statusCode, 401);
  assert.equal(new Secret('').matches(''), false);
  assert.equal(STORED.matches(SECRET), true);
  assert.equal(STORED.matches(SECRET.slice(0, -1)), false);
  assert.equal(STORED.matches(42), false);
});

test('failures are rate-limited per caller: over the limit even the right secret gets 401, until the window passes', () => {
  const limiter = new FailureLimiter({ max: 3, windowMs: 60_000 });
  const ask = (caller: string, secret: string, now: number) => (getClusterInfo(view, { cocoaSecret: secret }, STORED, { caller, now, limiter }).json as any).statusCode;
  for (let i = 0; i < 3; i++) assert.equal(ask('198.51.100.1', 'guess', 1000 + i), 401);
  assert.equal(ask('198.51.100.1', SECRET, 2000), 401, 'blocked: the secret is not even checked');
  assert.equal(ask('198.51.100.2', SECRET, 2000), 200, 'another caller is not affected');
  assert.equal(ask('198.51.100.1', SECRET, 61_000), 200, 'the window has passed');
});

test('updateClusterInfo: the leader answers 405 with the original string before any secret check, to anyone', () => {
  const expected = `{"statusCode":405,"statusString":"Not Allowed! Cocoa is soooo kawaii, Do you still sure you really want to eat Cocoa???","cocoaBasic":${ZERO}}`;
  const r = updateClusterInfo();
  assert.equal(r.status, 200);
  assert.equal(JSON.stringify(r.json), expected);
});

test('badge: shields-style SVG with "<nodeName> | live/total", escaped', () => {
  const r = badgeAnswer('leader-1', 1, 2);
  assert.equal(r.contentType, 'image/svg+xml; charset=utf-8');
  assert.match(r.text!, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* width="184" height="20" role="img"/);
  assert.match(r.text!, /<title>leader-1 \| 1\/2<\/title>/);
  assert.match(r.text!, /<rect x="81" width="103" height="20" fill="pink"\/>/);
  assert.equal((r.text!.match(/textLength="930">leader-1 \| 1\/2<\/text>/g) ?? []).length, 2);
  assert.match(badgeAnswer('<a&b>', 0, 0).text!, /<title>&#60;a&#38;b&#62; \| 0\/0<\/title>/);
});

test('status page: title, nodes with their watchdog, lines with node, last switch and pending retry', async () => {
  const providers = createProviders(config.providers);
  const now = Date.UTC(2023, 8, 18, 14, 55, 0);
  const pass = await runPass({ services: config.services, nodes: config.nodes, providers: new Map([['dry', providers.get('dry')!]]), liveness: { watchdog: { 'node-a': { up: true, since: 0 }, 'node-b': { up: false, since: 0 } } }, now, upAfterMs: 30_000, backoff: config.retry });
  const key = 'dry:www.example.test/mobile/A';
  const rows = lineStatusRows(
    pass.decisions,
    new Map([[key, { ...pass.switched.find((s) => s.service === 'web' && s.line === 'mobile')!, at: now }]]),
    new Map([[key, { key, service: 'web', provider: 'dry', line: 'mobile', recordType: 'A', attempt: 2, error: 'provider "dry" (dry-run): <boom>', retryInMs: 4000, dueAt: now + 4000 }]]),
  );
  const html = statusAnswer(view, rows, now).text!;
  assert.match(html, /<title>CocoaSyncer - leader-1<\/title>/);
  assert.match(html, /<h2>Nodes \(1\/2 alive\)<\/h2>/);
  assert.match(html, /<td>node-b<\/td><td>192\.0\.2\.2<\/td><td>CU, CMCC, CNEdu<\/td><td>IPV4<\/td><td>504 lost<\/td><td>2023-09-18T14:40:11\.011Z<\/td><td>889<\/td>/);
  assert.match(html, /<td>web<\/td><td>www\.example\.test<\/td><td>mobile<\/td><td>A<\/td><td>node-a<\/td><td>192\.0\.2\.1<\/td><td>no node held the line; node-a serves default \(no live node serves mobile\)<\/td><td>2023-09-18T14:55:00\.000Z \(empty\) → node-a<\/td><td>attempt 2, next at 2023-09-18T14:55:04\.000Z: provider &#34;dry&#34; \(dry-run\): &#60;boom&#62;<\/td>/);
});

test('gauges follow the watchdog at every scrape; counters count passes', async () => {
  const registry = new MetricsRegistry();
  let watchdog: ViewFacts['watchdog'] = { 'node-a': { up: true, lastBeat: 10_000 }, 'node-b': { up: true, lastBeat: 9_000 } };
  let now = 12_000;
  const m = registerDnsSyncMetrics(registry, () => ({ view: clusterView(config, facts(watchdog)), now, pendingWrites: 0 }));
  const series = () => registry.render().split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(series().filter((l) => l.startsWith('cocoaSyncerStatus')), [
    'cocoaSyncerStatus{cocoaSyncerStatus="NodeNumber"} 2',
    'cocoaSyncerStatus{cocoaSyncerStatus="CocoaSyncerManagedService"} 2',
    'cocoaSyncerStatus{cocoaSyncerStatus="CocoaSyncerCloudPlatformInfo"} 4',
    'cocoaSyncerStatus{cocoaSyncerStatus="CocoaSyncerNodeOnlineCount"} 2',
    'cocoaSyncerStatus{cocoaSyncerStatus="CocoaSyncerNodeOfflineCount"} 0',
  ]);
  watchdog = { ...watchdog, 'node-b': { up: false, lastBeat: 9_000 } };
  now = 20_000;
  assert.ok(series().includes('cocoaSyncerStatus{cocoaSyncerStatus="CocoaSyncerNodeOfflineCount"} 1'));
  assert.ok(series().includes('outpost_dns_sync_node_watchdog_seconds{node="node-b"} 11'));

  const providers = createProviders(config.providers);
  const pass = await runPass({ services: config.services, nodes: config.nodes, providers: new Map([['dry', providers.get('dry')!]]), liveness: { watchdog: { 'node-a': { up: true, since: 0 } } }, now, upAfterMs: 0, backoff: config.retry });
  m.recordPass(pass, now - 1500, now);
  const text = registry.render();
  assert.match(text, /^outpost_dns_sync_writes_total\{provider="dry"\} 12$/m);
  assert.match(text, /^outpost_dns_sync_switches_total\{line="mobile",service="web"\} 1$/m);
  assert.match(text, /^outpost_dns_sync_decision_lag_seconds 1\.5$/m);
  assert.match(text, /^outpost_dns_sync_lines_without_live_node 0$/m);
});

test('no secret of the config appears in any surface', async () => {
  const secrets = secretsIn(config).map((s) => s.reveal());
  assert.equal(secrets.length, 5);
  const registry = new MetricsRegistry();
  registerDnsSyncMetrics(registry, () => ({ view, now: Date.now(), pendingWrites: 0 }));
  const surfaces = [
    JSON.stringify(getClusterInfo(view, { cocoaSecret: SECRET }, STORED)),
    JSON.stringify(getClusterInfo(view, { cocoaSecret: 'x' }, STORED)),
    JSON.stringify(updateClusterInfo()),
    badgeAnswer(view.nodeName, 1, 2).text!,
    statusAnswer(view, [], Date.now()).text!,
    registry.render(),
  ];
  for (const text of surfaces) for (const s of secrets) assert.ok(!text.includes(s), `a surface holds ${s}`);
});
