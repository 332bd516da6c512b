/**
 * Names of Object.prototype's members as ids, in every place a route takes one (path, query, form,
 * JSON body) on the controller's REST, prober (iplive) and app-store / server-stats (Websoft9) routes
 * and the agent's local API: each answers 4xx in its API's envelope and changes nothing, and every
 * route keeps working afterwards, also after a crash and restart. Path-parameter routes come from the
 * servers' own route listings, so a route added later is attacked too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TestController, TestAgent, http, tempDir, until, type ApiResponse } from './helpers/cluster.ts';
import { assertRefused, envelopeProblem, listRoutes, type Envelope } from './helpers/envelopes.ts';
import { postForm } from './prober-fixtures.ts';
import { openStore } from '../plugins/sdk/store.ts';
import { parseWireJson } from '../plugins/sdk/json.ts';
import { HttpServer } from '../runtime/http-server.ts';
import { restError } from '../plugins/sdk/http.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { rawRequest } from './helpers/raw-http.ts';

const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];
const PASSWD = 'probe-node-passwd';

let c: TestController;
let a: TestAgent;
let agentToken: string;
let joinToken: string;

before(async () => {
  const plugins = { 'server-stats': { interval: 1, diskInterval: 5 }, prober: { apps: { shop: {} }, minInterval: 10 }, 'app-store': { socketPath: '/nonexistent/outpost-docker.sock' } };
  c = await TestController.start({ config: { plugins } });
  a = await TestAgent.start(c, { name: 'proto-a', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, prober: {} } });
  await until('node up', async () => (await c.node(a.nodeId))?.state === 'up', 20_000);
  agentToken = JSON.parse(await readFile(join(a.dataDir, 'state.json'), 'utf8')).apiToken;
  // State the attacks must leave alone: a token with uses left, a subscription, a monitor, a probe node.
  joinToken = await c.joinToken({ uses: 3 });
  assert.equal((await c.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['test.ping'] })).status, 201);
  assert.equal((await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: 1, record_ids: '11:12', ips: '127.0.0.1:127.0.0.2', protocol: 'tcp', port: 9, interval: 60 })).body.code, 1000);
  assert.equal((await postForm(`${c.url}/add_node`, { node_ip: '127.0.0.1', passwd: PASSWD })).body.code, 1000);
});

after(async () => {
  await a?.stop();
  await c?.stop();
});

/** Everything an attack could have changed, without what changes by itself (liveness, probe results). */
async function state(): Promise<string> {
  const get = async (path: string) => {
    const r = await c.api('GET', path);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    return r.body;
  };
  const nodes = (await get('/api/v1/nodes')).nodes.map((n: any) => [n.id, n.name, n.labels]);
  const tokens = (await get('/api/v1/tokens')).tokens.map((t: any) => [t.id, t.usesLeft, t.revoked, t.labels]);
  const webhooks = (await get('/api/v1/webhooks')).webhooks.map((w: any) => [w.id, w.url, w.events]);
  const deliveries = (await get('/api/v1/deliveries')).deliveries.map((d: any) => d.id);
  const prober = await get('/api/v1/prober/groups');
  const groups = prober.groups.map((g: any) => [g.app_name, g.group_id, g.records.map((r: any) => [r.record_id, r.ip])]);
  const config = (await get('/api/v1/plugins/prober/config')).config;
  return JSON.stringify({ nodes, tokens, webhooks, deliveries, groups, probeNodes: prober.probe_nodes.map((n: any) => n.address), config });
}

interface Attack {
  what: string;
  envelope: Envelope;
  send(): Promise<ApiResponse>;
}

const form = (path: string, fields: Record<string, string | number>, token?: string) =>
  http('POST', c.url + path, { token, raw: new URLSearchParams(Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)])).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
/** JSON built as text, so a "__proto__" key is really on the wire. */
const rawJson = (path: string, json: string, token?: string) => http('POST', c.url + path, { token, raw: json, headers: { 'content-type': 'application/json' } });
const obj = (key: string, value: unknown) => `{${JSON.stringify(key)}:${JSON.stringify(value)}}`;

/** Every route with path parameters, each parameter in turn set to key (the others to a harmless id). */
async function pathAttacks(key: string): Promise<Attack[]> {
  const servers = [
    { base: c.url, token: c.adminToken, routes: await listRoutes(`${c.url}/api/v1/routes`, c.adminToken) },
    { base: `http://127.0.0.1:${a.port}`, token: agentToken, routes: await listRoutes(`http://127.0.0.1:${a.port}/v1/routes`, agentToken) },
  ];
  const out: Attack[] = [];
  for (const s of servers) {
    for (const route of s.routes) {
      const params = route.path.split('/').filter((seg) => seg.startsWith(':'));
      for (const p of params) {
        const path = route.path.replace(/:[A-Za-z_]+/g, (seg) => (seg === p ? encodeURIComponent(key) : 'x1'));
        out.push({ what: `${route.method} ${path}`, envelope: route.envelope, send: () => http(route.method, s.base + path, { token: s.token }) });
      }
    }
  }
  assert.ok(out.length >= 10, `expected the REST path-parameter routes in the listings, found ${out.length}`);
  return out;
}

/** Ids in queries, forms and JSON bodies, route by route. */
function fieldAttacks(key: string): Attack[] {
  const T = c.adminToken;
  const rest = (what: string, send: () => Promise<ApiResponse>): Attack => ({ what, envelope: 'rest', send });
  const iplive = (what: string, send: () => Promise<ApiResponse>): Attack => ({ what, envelope: 'iplive', send });
  const ws9 = (what: string, send: () => Promise<ApiResponse>): Attack => ({ what, envelope: 'websoft9', send });
  const monitor = { app_name: 'shop', group_id: 1, record_ids: '11:12', ips: '127.0.0.1:127.0.0.2', protocol: 'tcp', port: 9, interval: 60 };
  const deal = (items: unknown) => ({ passwd: PASSWD, timestamp: Date.now(), data: JSON.stringify(items) });
  return [
    rest('enroll name (JSON)', () => http('POST', `${c.url}/api/v1/enroll`, { body: { token: joinToken, name: key } })),
    rest('enroll name (form)', () => form('/api/v1/enroll', { token: joinToken, name: key })),
    rest('enroll label key (JSON)', () => rawJson('/api/v1/enroll', `{"token":${JSON.stringify(joinToken)},"name":"proto-new","labels":${obj(key, 'x')}}`)),
    rest('enroll label key (form)', () => form('/api/v1/enroll', { token: joinToken, name: 'proto-new', labels: `${key}=x` })),
    rest('token label key (JSON)', () => rawJson('/api/v1/tokens', `{"labels":${obj(key, 'x')}}`, T)),
    rest('token label key (form)', () => form('/api/v1/tokens', { labels: `${key}=x` }, T)),
    rest('deliveries ?subscription=', () => http('GET', `${c.url}/api/v1/deliveries?subscription=${encodeURIComponent(key)}`, { token: T })),
    rest('prober results ?group=', () => http('GET', `${c.url}/api/v1/prober/results?group=${encodeURIComponent(key)}`, { token: T })),
    rest('plugin config key', () => http('PUT', `${c.url}/api/v1/plugins/prober/config`, { token: T, raw: obj(key, { shop: {} }), headers: { 'content-type': 'application/json' } })),
    rest('webhook event name', () => http('POST', `${c.url}/api/v1/webhooks`, { token: T, body: { url: 'http://127.0.0.1:9/x', events: [key] } })),
    iplive('operate_monitor app_name', () => form('/operate_monitor', { ...monitor, app_name: key })),
    iplive('operate_monitor group_id', () => form('/operate_monitor', { ...monitor, group_id: key })),
    iplive('operate_monitor record_ids', () => form('/operate_monitor', { ...monitor, record_ids: `11:${key}` })),
    iplive('operate_monitor node_ips', () => form('/operate_monitor', { ...monitor, node_ips: key })),
    iplive('operate_monitor JSON record_ids', () => rawJson('/operate_monitor', JSON.stringify({ ...monitor, record_ids: key, ips: '127.0.0.1' }))),
    iplive('operate_monitor JSON key', () => rawJson('/operate_monitor', `{"app_name":"shop","group_id":"1",${obj(key, { record_ids: '1' }).slice(1, -1)}}`)),
    iplive('update_monitor app_name', () => form('/update_monitor', { app_name: key, group_id: 1, record_id: '11', ip: '127.0.0.3' })),
    iplive('update_monitor group_id', () => form('/update_monitor', { app_name: 'shop', group_id: key, record_id: '11', ip: '127.0.0.3' })),
    iplive('update_monitor record_id', () => form('/update_monitor', { app_name: 'shop', group_id: 1, record_id: key, ip: '127.0.0.3' })),
    iplive('stop_monitor app_name', () => form('/stop_monitor', { app_name: key, group_id: 1 })),
    iplive('stop_monitor group_id', () => form('/stop_monitor', { app_name: 'shop', group_id: key })),
    iplive('add_node node_ip', () => form('/add_node', { node_ip: key, passwd: PASSWD })),
    iplive('deal server_id', () => form('/deal', deal([{ server_id: key, last_status: 1, res_time: 3 }]))),
    iplive('deal item key', () => form('/deal', { passwd: PASSWD, timestamp: Date.now(), data: `[${obj(key, { server_id: '11' })}]` })),
    ws9('installApp appName', () => http('GET', `${c.url}/installApp?appName=${encodeURIComponent(key)}`, { token: T })),
    ws9('uninstallApp appName', () => http('POST', `${c.url}/uninstallApp`, { token: T, body: { appName: key } })),
    ws9('getAppInfo appName', () => form('/getAppInfo', { appName: key }, T)),
    ws9('installApp node', () => http('GET', `${c.url}/installApp?appName=nginx&node=${encodeURIComponent(key)}`, { token: T })),
    ws9('getAllAppInfo node', () => http('GET', `${c.url}/getAllAppInfo?node=${encodeURIComponent(key)}`, { token: T })),
    ws9('uninstallAllApp node', () => http('POST', `${c.url}/uninstallAllApp`, { token: T, body: { node: key } })),
    ws9('searchServer node', () => http('GET', `${c.url}/searchServer?node=${encodeURIComponent(key)}`, { token: T })),
    rest('agent path', () => http('GET', `http://127.0.0.1:${a.port}/${encodeURIComponent(key)}`)),
    // Other names are ordinary (ignored) fields in a body; "__proto__" is refused wherever it stands.
    ...(key === '__proto__' ? [ws9('searchServer JSON key', () => rawJson('/searchServer', obj(key, { node: 'proto-a' }), T))] : []),
  ];
}

/** Every GET route without parameters answers, in its envelope where it refuses (401 without a session, 503 for a plugin the node lacks); the core ones 200. */
async function allRoutesWork(): Promise<void> {
  assert.equal((await http('GET', `${c.url}/healthz`)).status, 200);
  assert.equal((await http('GET', `http://127.0.0.1:${a.port}/healthz`)).status, 200);
  const servers = [
    { base: c.url, token: c.adminToken, routes: await listRoutes(`${c.url}/api/v1/routes`, c.adminToken) },
    { base: `http://127.0.0.1:${a.port}`, token: agentToken, routes: await listRoutes(`http://127.0.0.1:${a.port}/v1/routes`, agentToken) },
  ];
  for (const s of servers) {
    for (const route of s.routes.filter((r) => r.method === 'GET' && !r.path.includes(':'))) {
      const r = await http('GET', s.base + route.path, { token: s.token });
      assert.ok(r.status < 500 || r.status === 503, `GET ${route.path} answered ${r.status}: ${r.text.slice(0, 200)}`);
      if (r.status >= 400) assert.equal(envelopeProblem(route.envelope, r.status, r.body, r.headers.get('content-type') ?? ''), undefined, `GET ${route.path}: ${r.text}`);
    }
  }
  for (const path of ['/api/v1/nodes', '/api/v1/tokens', '/api/v1/status', '/api/v1/prober/groups', '/api/v1/webhooks', '/metrics']) {
    assert.equal((await c.api('GET', path)).status, 200, path);
  }
  // Writes still work (and are undone): a monitor in and out.
  assert.equal((await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: 2, record_ids: '21', ips: '127.0.0.1', protocol: 'tcp', port: 9, interval: 60 })).body.code, 1000);
  assert.equal((await postForm(`${c.url}/stop_monitor`, { app_name: 'shop', group_id: 2 })).body.code, 1000);
}

test('prototype-member names as ids: 4xx in the API\'s envelope, nothing changes, every route keeps working, also after a crash', async () => {
  const before = await state();
  for (const key of KEYS) {
    for (const attack of [...(await pathAttacks(key)), ...fieldAttacks(key)]) {
      assertRefused(attack.envelope, await attack.send(), `${attack.what} with ${JSON.stringify(key)}`);
    }
    assert.equal(await state(), before, `state changed after the attacks with ${key}`);
  }
  await allRoutesWork();
  assert.equal(await state(), before);

  await c.restart();
  await until('node up again', async () => (await c.node(a.nodeId))?.state === 'up', 20_000);
  assert.equal(await state(), before, 'state after the restart');
  await allRoutesWork();
});

test('stores keep a "__proto__" id as an ordinary entry, on disk and back', async () => {
  const dir = await tempDir('outpost-proto-store-');
  try {
    const s = await openStore<{ byId: Record<string, { n: number }> }>(dir, 'ids', { byId: {} });
    await s.update((d) => {
      for (const [i, key] of KEYS.entries()) d.byId[key] = { n: i };
    });
    const again = await openStore<{ byId: Record<string, { n: number }> }>(dir, 'ids', { byId: {} });
    assert.deepEqual(Object.keys(again.data.byId).sort(), [...KEYS].sort());
    assert.equal(again.data.byId.__proto__.n, 0);
    assert.equal(again.data.byId['toString'].n, 3);
    assert.equal(({} as Record<string, unknown>).n, undefined, 'Object.prototype untouched');
    const fresh = await openStore<{ byId: Record<string, unknown> }>(dir, 'fresh', { byId: {} });
    assert.equal(fresh.data.byId.constructor, undefined, 'an empty map has no inherited members');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('JSON from the wire with a "__proto__" key is refused, written plainly or with escapes', () => {
  assert.throws(() => parseWireJson('{"a":{"__proto__":{"polluted":1}}}'), /"__proto__" is not allowed/);
  assert.throws(() => parseWireJson('[{"\\u005f_proto__":1}]'), /"__proto__" is not allowed/);
  assert.deepEqual(parseWireJson('{"constructor":"ok","text":"caf\\u00e9"}'), { constructor: 'ok', text: 'café' });
});

test('a failure after the status line is out closes the connection, never a 200 line over a 500 body', async () => {
  const server = new HttpServer({ log: createLog('test', 'fatal'), isAdmin: () => false });
  server.mount([{ method: 'GET', path: '/x', auth: 'none', error: restError, handler: () => ({ json: { ok: true } }) }]);
  server.finish((path) => restError(404, `no route for ${path}`));
  const port = await server.listen('127.0.0.1', 0);
  // What DELETE /api/v1/tokens/__proto__ once did: an enumerable Object.prototype member, which
  // hyper-express writes as a header (for-in over its header map) and uWS refuses after the status line.
  const proto = Object.prototype as Record<string, unknown>;
  proto.revoked = true;
  try {
    await assert.rejects(rawRequest(port, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n'), /closed without a complete response/);
  } finally {
    delete proto.revoked;
  }
  try {
    const r = await rawRequest(port, 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(r.status, 200, 'the server answers normally again');
  } finally {
    server.close();
  }
});
