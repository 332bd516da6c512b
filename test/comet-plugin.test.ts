/**
 * The comet plugin's two halves on the real runner (plugins/sdk/testing, real clock): the gateway
 * listens through ctx.listen on port 0, goim's clients connect to it over real sockets, and the
 * controller's goim API is reached through the runtime's request path. What only separate
 * processes show (the real link, a node killed) is in comet-cluster.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import comet from '../plugins/comet/index.ts';
import { encodeFrame } from '../plugins/comet/protocol/frame.ts';
import { testPlugin, type PluginHarness } from '../plugins/sdk/testing/index.ts';
import { TcpClient, TEST_TLS, WsClient, sleep } from './comet-fixtures.ts';

let h: PluginHarness<typeof comet.spec>;
let ws = '';
let tcp = 0;
const config = { tcp: { port: 0 }, ws: { port: 0 }, feedIntervalMs: 20, onlineRefreshMs: 100 };

/** The gateway's bound ports, as goim's nodes/instances tells clients. */
async function ports(): Promise<{ ws: string; tcp: number }> {
  const r = await h.until('the node in nodes/instances', async () => (await h.inject({ method: 'GET', url: '/goim/nodes/instances' })).json?.data?.[0]);
  const addrs: string[] = r.addrs;
  return { ws: addrs.find((a) => a.startsWith('ws://'))!, tcp: Number(addrs.find((a) => a.startsWith('tcp://'))!.split(':').pop()) };
}

const total = async () => (await h.inject({ method: 'GET', url: '/goim/online/total' })).json.data.conn_count as number;
const push = (url: string, body: string | Buffer, admin = true) => h.inject({ method: 'POST', url, body, admin });

before(async () => {
  h = await testPlugin({ plugin: comet, config, clock: 'real' });
  await h.settle();
  ({ ws, tcp } = await ports());
});
after(() => h.close());

test('the gateway listens through ctx.listen on the configured host; nodes/instances names its ports', async () => {
  assert.match(ws, /^ws:\/\/127\.0\.0\.1:\d+\/sub$/);
  assert.ok(tcp > 0);
  assert.deepEqual(h.status().agent.map((p) => [p.name, p.state]), [['comet', 'running']]);
});

test('push/keys: the body arrives verbatim (binary, or what looks like broken JSON), on WebSocket and TCP', async () => {
  const a = await WsClient.authed(ws, { mid: 1, key: 'k-ws', accepts: [1000] });
  const b = await TcpClient.authed(tcp, { mid: 2, key: 'k-tcp', accepts: [1000] });
  const binary = Buffer.from([0, 255, 1, 254, 0x7b]);
  assert.deepEqual((await push('/goim/push/keys?operation=1000&keys=k-ws&keys=k-tcp', binary)).json, { code: 0, message: '' });
  assert.deepEqual((await push('/goim/push/keys?operation=1000&keys=k-ws', '{not json', false)).json.code, -400, 'no token: refused');
  assert.deepEqual((await push('/goim/push/keys?operation=1000&keys=k-ws', '{not json')).json, { code: 0, message: '' });
  await a.until('two messages', () => a.messages.length === 2);
  await b.until('one message', () => b.messages.length === 1);
  await sleep(100);
  assert.deepEqual(a.messages[0].body, binary);
  assert.equal(a.messages[1].body.toString(), '{not json', 'nothing refused for looking like JSON; the unauthenticated push delivered nothing');
  assert.deepEqual(b.messages.map((m) => [m.op, m.body]), [[1000, binary]], 'TCP: the inner frame itself');
  a.close();
  b.close();
});

test('op 8 leaves only after the controller acknowledged the batch carrying the connection; a push at op 8 arrives', async () => {
  const c = await WsClient.open(ws, JSON.stringify({ mid: 7, key: 'at-op8', room_id: 'live://8', accepts: [1000] }), { autoHeartbeat: false });
  let ackedFirst: boolean | undefined;
  let answer: Promise<unknown> | undefined;
  await c.until('op 8', () => {
    if (c.authed && ackedFirst === undefined) {
      // The controller has the key now: the batch holding it was acknowledged before op 8 was written.
      const batch = h.messages.find((m) => m.type === 'presence' && JSON.stringify(m.msg).includes('"at-op8"'));
      const seq = (batch?.msg as { batch?: { seq: number } } | undefined)?.batch?.seq;
      ackedFirst = seq !== undefined && h.messages.some((m) => m.type === 'control' && (m.msg as { t: string; seq?: number }).t === 'ack' && (m.msg as { seq: number }).seq >= seq);
      answer = push('/goim/push/keys?operation=1000&keys=at-op8', 'right after op 8');
    }
    return c.authed;
  });
  assert.equal(ackedFirst, true, 'ack before op 8');
  assert.deepEqual(((await answer) as { json: unknown }).json, { code: 0, message: '' });
  await c.until('the push', () => c.messages.length === 1);
  assert.equal(c.messages[0].body.toString(), 'right after op 8');
  c.close();
});

test('heartbeat op 3 carries the room count from the controller; online/room and online/top agree', async () => {
  const clients = await Promise.all([1, 2, 3].map((i) => WsClient.authed(ws, { mid: i, room_id: 'live://42', accepts: [] }, { autoHeartbeat: false })));
  await h.until('3 in live://42', async () => (await h.inject({ method: 'GET', url: '/goim/online/room?type=live&rooms=42&rooms=nope' })).json.data['42'] === 3);
  assert.deepEqual((await h.inject({ method: 'GET', url: '/goim/online/room?type=live&rooms=42&rooms=nope' })).json.data, { 42: 3, nope: 0 });
  assert.deepEqual((await h.inject({ method: 'GET', url: '/goim/online/top?type=live&limit=1' })).json.data, [{ room_id: '42', count: 3 }]);
  const c = clients[0];
  await h.until('op 3 says 3', async () => {
    c.heartbeat();
    await sleep(50);
    const last = c.frames.filter((f) => f.op === 3).pop();
    return last?.body.readInt32BE(0) === 3;
  });
  // Room pushes ignore accepts (the clients accept nothing).
  assert.deepEqual((await push('/goim/push/room?operation=1000&type=live&room=42', 'to the room')).json, { code: 0, message: '' });
  for (const x of clients) await x.until('room push', () => x.messages.length === 1);
  for (const x of clients) x.close();
});

test('the dashboard panel and its test push; the status route', async () => {
  const c = await WsClient.authed(ws, { mid: 9, key: 'panel-key', room_id: 'live://panel', accepts: [1000, 1001] });
  await h.until('the key is routed', async () => (await h.inject({ method: 'GET', url: '/api/v1/comet/status' })).json.conns >= 1);
  const panel = h.controller.panels().find((p) => p.plugin === 'comet')!.panel;
  const html = String(await panel.render());
  assert.match(html, /live:\/\/panel/);
  assert.match(html, /id="comet-push"/);
  assert.match(html, /action="\/api\/v1\/comet\/push"/);
  const r = await h.inject({ method: 'POST', url: '/api/v1/comet/push', body: { to: 'key', target: 'panel-key', operation: '1001', message: 'from the panel' } });
  assert.deepEqual(r.json, { to: 'key', target: 'panel-key', nodes: 1 });
  const room = await h.inject({ method: 'POST', url: '/api/v1/comet/push', body: { to: 'room', target: 'live://panel', message: 'to the room' } });
  assert.equal(room.json.nodes, 1);
  await c.until('both', () => c.messages.length === 2);
  assert.deepEqual(c.messages.map((m) => [m.op, m.body.toString()]), [[1001, 'from the panel'], [1000, 'to the room']]);
  const bad = await h.inject({ method: 'POST', url: '/api/v1/comet/push', body: { to: 'room', target: 'no-type', message: 'x' } });
  assert.deepEqual(bad.json, { error: { status: 400, message: 'room must be type://id (e.g. live://1000), got "no-type"' } });
  assert.equal((await h.inject({ method: 'POST', url: '/api/v1/comet/push', body: { to: 'everyone', target: 'x', message: 'x' } })).status, 400);
  const status = (await h.inject({ method: 'GET', url: '/api/v1/comet/status' })).json;
  assert.equal(status.nodes[0].name, 'node-1');
  assert.equal(status.nodes[0].plugin, 'running');
  c.close();
});

test('metrics: connections, rooms, pushes by kind, messages delivered per node', async () => {
  const c = await WsClient.authed(ws, { mid: 11, key: 'metrics-key', room_id: 'live://m', accepts: [1000] });
  await h.until('routed', async () => (await total()) >= 1);
  await push('/goim/push/mids?operation=1000&mids=11', 'm');
  await c.until('message', () => c.messages.length === 1);
  await h.until('delivered counted', () => (h.metric('outpost_comet_messages_delivered_total', { node: 'node-1' }) ?? 0) > 0);
  assert.ok(h.metric('outpost_comet_pushes_total', { kind: 'mids' })! >= 1);
  assert.ok(h.metric('outpost_comet_connections', { node: 'node-1' })! >= 1);
  assert.ok(h.metric('outpost_comet_rooms', { node: 'node-1' })! >= 1);
  assert.ok(h.metric('outpost_comet_cluster_rooms')! >= 1);
  c.close();
});

test('the node down: its keys leave the tables at once; pushes answer 0 and deliver nothing; back up, a resync heals', async () => {
  const c = await WsClient.authed(ws, { mid: 12, key: 'down-key', accepts: [1000] });
  await h.until('routed', async () => (await total()) >= 1);
  h.setNode('down');
  assert.equal(await total(), 0, 'at once');
  assert.deepEqual((await push('/goim/push/keys?operation=1000&keys=down-key', 'lost')).json, { code: 0, message: '' });
  await sleep(200);
  assert.equal(c.messages.length, 0);
  h.setNode('up');
  await h.until('the resync brings the key back', async () => (await total()) >= 1);
  await push('/goim/push/keys?operation=1000&keys=down-key', 'back');
  await c.until('message', () => c.messages.length === 1);
  assert.equal(c.messages[0].body.toString(), 'back');
  c.close();
});

test('open: true serves goim\'s API without the token; a bad config fails the plugin naming the field', async () => {
  await h.configure({ ...config, open: true }, 'controller');
  await h.settle();
  assert.deepEqual((await h.inject({ method: 'GET', url: '/goim/online/total', admin: false })).json.code, 0);
  await h.configure({ ...config, tcp: { port: 70000 } }, 'agent');
  await h.settle();
  const agent = h.status().agent.find((p) => p.name === 'comet')!;
  assert.equal(agent.state, 'failed');
  assert.match(agent.error ?? '', /tcp\.port/);
});

test('WSS through ctx.listen (certificate and key from the config) and the JWT check, wired', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'comet-wss-'));
  await writeFile(join(dir, 'cert.pem'), TEST_TLS.cert);
  await writeFile(join(dir, 'key.pem'), TEST_TLS.key, { mode: 0o600 });
  const secret = 'a-test-secret-of-at-least-16-chars';
  const t = await testPlugin({
    plugin: comet,
    config: { ...config, tcp: { enabled: false }, ws: { enabled: false }, wss: { port: 0, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, auth: { jwt: { secret } } },
    clock: 'real',
  });
  try {
    await t.settle();
    const inst = await t.until('listed', async () => (await t.inject({ method: 'GET', url: '/goim/nodes/instances' })).json?.data?.[0]);
    const url = (inst.addrs as string[]).find((a) => a.startsWith('wss://'))!;
    assert.deepEqual(inst.addrs, [url], 'only WSS is enabled');
    const client = async (token: string) => {
      const ws = new WebSocket(url, { ca: TEST_TLS.cert });
      const frames: Buffer[] = [];
      let closed = false;
      ws.on('message', (d: Buffer) => frames.push(d));
      ws.on('close', () => (closed = true));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.send(encodeFrame(1, 7, 1, Buffer.from(JSON.stringify({ mid: 5, key: `jwt-${token.length}`, accepts: [1000], token }))));
      return { ws, frames, closed: () => closed };
    };
    const good = await client(await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('5').sign(new TextEncoder().encode(secret)));
    await t.until('op 8', () => good.frames.some((f) => f.readInt32BE(8) === 8));
    const wrong = await client(await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('6').sign(new TextEncoder().encode(secret)));
    await t.until('the token for another mid is refused', () => wrong.closed());
    assert.ok(!wrong.frames.some((f) => f.readInt32BE(8) === 8), 'no op 8');
    await t.until('routed', async () => (await t.inject({ method: 'GET', url: '/goim/online/total' })).json.data.conn_count === 1);
    await t.inject({ method: 'POST', url: '/goim/push/mids?operation=1000&mids=5', body: 'over tls' });
    await t.until('the push over WSS', () => good.frames.some((f) => f.readInt32BE(8) === 9));
    const push = good.frames.find((f) => f.readInt32BE(8) === 9)!;
    assert.equal(push.subarray(32).toString(), 'over tls');
    good.ws.terminate();
  } finally {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a controller without comet never acknowledges: op 8 still goes out (after the wait) and the agent says why', async () => {
  const t = await testPlugin({ plugin: comet, config, halves: ['agent'], clock: 'real' });
  try {
    await t.settle();
    const snapshot = t.messages.find((m) => m.type === 'presence' && (m.msg as { t: string }).t === 'snapshot');
    const meta = (snapshot?.msg as { meta: { wsPort: number } } | undefined)?.meta;
    assert.ok(meta?.wsPort, 'the gateway announced its ports');
    const c = await WsClient.authed(`ws://127.0.0.1:${meta.wsPort}/sub`, { mid: 1, key: 'lonely', accepts: [] });
    assert.ok(c.authed, 'served anyway');
    await t.until('the warning', () => t.logs.some((l) => /did not acknowledge connections/.test(l.msg)));
    c.close();
  } finally {
    await t.close();
  }
});
