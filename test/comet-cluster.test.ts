/**
 * comet across real processes: a controller and two agents (CLI children on loopback, port 0), the
 * real link between them, and clients behaving like goim's own — examples/javascript/client.js over
 * `ws`, the TCP benchmark client over node:net — connected to each agent's gateway. Pushes go
 * through goim's HTTP API on the controller; a node is killed with SIGKILL.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestAgent, TestController, until } from './helpers/cluster.ts';
import { JS_CLIENT_AUTH, TcpClient, WsClient, sleep, type Got } from './comet-fixtures.ts';

let c: TestController;
const agents: Record<'a' | 'b', TestAgent> = {} as never;
const gw: Record<'a' | 'b', { ws: string; tcp: number }> = {} as never;
const open: Array<{ close(): void }> = [];

const goim = async (method: 'GET' | 'POST', path: string, body = '') => {
  const r = await fetch(c.url + path, { method, headers: { authorization: `Bearer ${c.adminToken}` }, body: method === 'POST' ? body : undefined });
  return { status: r.status, json: (await r.json()) as { code: number; message: string; data?: any } };
};
const OK = { status: 200, json: { code: 0, message: '' } };
const total = async () => (await goim('GET', '/goim/online/total')).json.data.conn_count as number;

async function ws(node: 'a' | 'b', auth: object | string, opts: { autoHeartbeat?: boolean } = {}): Promise<WsClient> {
  const x = await WsClient.authed(gw[node].ws, auth, opts);
  open.push(x);
  return x;
}
async function tcp(node: 'a' | 'b', auth: object): Promise<TcpClient> {
  const x = await TcpClient.authed(gw[node].tcp, auth);
  open.push(x);
  return x;
}
const bodies = (x: { messages: Got[] }) => x.messages.map((m) => `${m.op}:${m.body.toString()}`);

before(async () => {
  c = await TestController.start({ config: { plugins: { comet: { feedIntervalMs: 50, onlineRefreshMs: 200 } } } });
  const comet = { tcp: { port: 0 }, ws: { port: 0 }, feedIntervalMs: 50 };
  for (const name of ['a', 'b'] as const) agents[name] = await TestAgent.start(c, { name, plugins: { comet } });
  // Each gateway's bound ports, as goim's nodes/instances tells clients where to connect.
  // Listed once each gateway's first snapshot (with its ports) reached the controller.
  const instances = await until('both gateways in nodes/instances', async () => {
    const r = await goim('GET', '/goim/nodes/instances');
    return r.json.data?.length === 2 ? (r.json.data as Array<{ hostname: string; addrs: string[] }>) : undefined;
  }, 30_000);
  for (const i of instances) {
    const name = i.hostname as 'a' | 'b';
    gw[name] = { ws: i.addrs.find((a) => a.startsWith('ws://'))!, tcp: Number(i.addrs.find((a) => a.startsWith('tcp://'))!.split(':').pop()) };
  }
});

after(async () => {
  for (const x of open) x.close();
  for (const a of Object.values(agents)) await a?.stop();
  await c?.stop();
});

test('pushes by key, mid, room and all reach exactly the right connections on both agents, once each', async () => {
  // goim's JS client sends exactly JS_CLIENT_AUTH (mid 123, live://1000, accepts 1000-1002).
  const aWs = await ws('a', JS_CLIENT_AUTH);
  const aTcp = await tcp('a', { mid: 2, key: 'a-tcp', room_id: 'test://1', platform: 'ios', accepts: [1000, 1001, 1002] });
  const bWs = await ws('b', { mid: 123, key: 'b-ws', room_id: 'live://1000', platform: 'web', accepts: [1000] });
  const bTcp = await tcp('b', { mid: 3, key: 'b-tcp', room_id: 'live://1000', platform: 'ios', accepts: [] });
  await until('4 connections routed', async () => (await total()) === 4);

  assert.deepEqual(await goim('POST', '/goim/push/keys?operation=1000&keys=a-tcp&keys=b-ws&keys=b-tcp', 'by key'), OK);
  assert.deepEqual(await goim('POST', '/goim/push/mids?operation=1001&mids=123', 'by mid'), OK);
  assert.deepEqual(await goim('POST', '/goim/push/room?operation=1002&type=live&room=1000', 'by room'), OK);
  assert.deepEqual(await goim('POST', '/goim/push/all?operation=1000', 'to all'), OK);
  const expected: Array<[WsClient | TcpClient, string[]]> = [
    [aWs, ['1001:by mid', '1002:by room', '1000:to all']],
    [aTcp, ['1000:by key', '1000:to all']],
    // accepts only 1000: the mid push (op 1001) is filtered; the room push ignores accepts.
    [bWs, ['1000:by key', '1002:by room', '1000:to all']],
    // accepts nothing: only the room push.
    [bTcp, ['1002:by room']],
  ];
  for (const [x, want] of expected) await x.until(`${want.length} messages`, () => x.messages.length >= want.length);
  await sleep(300);
  for (const [x, want] of expected) assert.deepEqual(bodies(x).sort(), [...want].sort());
  // The shapes goim's clients parse: one op-9 WebSocket message per push, bare inner frames on TCP.
  assert.ok(aWs.frames.filter((f) => f.op !== 8 && f.op !== 3).every((f) => f.op === 9));
  assert.ok(aTcp.frames.every((f) => f.op !== 9));
});

// How fast they converge (the 2 s) is measured by the bench (`npm run bench -- comet`), not asserted here.
test('counts converge across the cluster: online/room, online/top, online/total and the op-3 heartbeat', async () => {
  const onA = await ws('a', { mid: 50, room_id: 'live://7', accepts: [] }, { autoHeartbeat: false });
  const onB = await ws('b', { mid: 51, room_id: 'live://7', accepts: [] }, { autoHeartbeat: false });
  const tcpOnB = await tcp('b', { mid: 52, room_id: 'live://7', accepts: [] });
  const op3 = async (x: WsClient) => {
    const before = x.frames.length;
    x.heartbeat();
    await x.until('op 3', () => x.frames.slice(before).some((f) => f.op === 3));
    return x.frames.slice(before).find((f) => f.op === 3)!.body.readInt32BE(0);
  };
  await until('op 3 on node a says 3 (two of them are on node b)', async () => (await op3(onA)) === 3, 15_000, 50);
  assert.equal(await op3(onB), 3);
  assert.deepEqual((await goim('GET', '/goim/online/room?type=live&rooms=7&rooms=1000&rooms=404')).json.data, { 7: 3, 1000: 3, 404: 0 });
  assert.deepEqual((await goim('GET', '/goim/online/top?type=live&limit=2')).json.data, [{ room_id: '1000', count: 3 }, { room_id: '7', count: 3 }]);
  assert.equal(await total(), 7);
  tcpOnB.close();
  await until('op 3 says 2 once the TCP client left', async () => (await op3(onA)) === 2, 15_000, 50);
});

test('the same key on the other node: the older connection is kicked, the newer one gets the pushes', async () => {
  const n = await total();
  const older = await ws('a', { mid: 60, key: 'dup', accepts: [1000] });
  await until('routed', async () => (await total()) === n + 1);
  const newer = await ws('b', { mid: 60, key: 'dup', accepts: [1000] });
  await older.untilClosed();
  assert.equal(older.closeCode, 4001, 'goim\'s Bucket.Put, across nodes');
  assert.deepEqual(await goim('POST', '/goim/push/keys?operation=1000&keys=dup', 'to the newer'), OK);
  await newer.until('push', () => newer.messages.length === 1);
  assert.equal(newer.messages[0].body.toString(), 'to the newer');
});

test('registered before op 8 across the real link: a push issued the moment op 8 arrives reaches the client', async () => {
  for (let i = 0; i < 20; i++) {
    const node = i % 2 ? 'a' : 'b';
    const x = await WsClient.open(gw[node].ws, JSON.stringify({ mid: 1000 + i, key: `fresh-${i}`, accepts: [1000] }), { autoHeartbeat: false });
    open.push(x);
    let answered: Promise<unknown> | undefined;
    await x.until('op 8', () => {
      if (x.authed) answered ??= goim('POST', `/goim/push/keys?operation=1000&keys=fresh-${i}`, `at op 8 #${i}`);
      return x.authed;
    });
    assert.deepEqual(await answered, OK);
    await x.until(`push #${i} on node ${node}`, () => x.messages.length === 1);
    assert.equal(x.messages[0].body.toString(), `at op 8 #${i}`);
  }
});

test('a controller crash loses nothing the agents hold: their snapshots rebuild the tables, pushes work again', async () => {
  const keep = await ws('a', { mid: 80, key: 'through-a-crash', accepts: [1000] });
  const before = await until('routed', async () => {
    const n = await total();
    return n > 0 ? n : undefined;
  });
  // One stats tick (1 s) passes, so node a's counters were sent before the crash and do not change after it.
  await sleep(1200);
  await c.restart('SIGKILL');
  await until('every connection back in the tables', async () => (await total().catch(() => -1)) === before, 30_000);
  // Node a delivered before the crash and nothing since: its gateway's counters reach the new controller anyway.
  await until('node a\'s delivered counter back', async () => /outpost_comet_messages_delivered_total\{node="a"\} [1-9]/.test((await c.api('GET', '/metrics')).text), 5000, 100);
  assert.deepEqual(await goim('POST', '/goim/push/keys?operation=1000&keys=through-a-crash', 'after the crash'), OK);
  await keep.until('push', () => keep.messages.length === 1);
  assert.equal(keep.messages[0].body.toString(), 'after the crash');
});

test('a node killed: its keys vanish at once, pushes to them answer 0 and deliver nothing elsewhere; metrics per node', async () => {
  const metrics = async () => (await c.api('GET', '/metrics')).text;
  assert.match(await metrics(), /outpost_comet_connections\{node="b"\} [1-9]/);
  const survivors = [await ws('a', { mid: 70, key: 'survivor', room_id: 'live://1000', accepts: [1000] })];
  const before = await until('b counted', async () => {
    const s = (await c.api('GET', '/api/v1/comet/status')).body;
    return s.nodes.length === 2 && s.nodes.every((n: { conns: number }) => n.conns > 0) ? s : undefined;
  });
  const onA = before.nodes.find((n: { name: string }) => n.name === 'a').conns;
  await agents.b.kill('SIGKILL');
  await until('only node a\'s connections are counted', async () => (await total()) === onA, 5000, 50);
  assert.deepEqual(await goim('POST', '/goim/push/keys?operation=1000&keys=b-ws&keys=dup', 'to the dead'), OK);
  assert.deepEqual(await goim('POST', '/goim/push/mids?operation=1000&mids=60', 'to a dead mid'), OK);
  await sleep(500);
  assert.deepEqual(survivors[0].messages, [], 'nothing delivered elsewhere');
  assert.deepEqual((await goim('GET', '/goim/online/room?type=live&rooms=1000')).json.data, { 1000: 2 }, 'a\'s JS client and the survivor');
  const instances = (await goim('GET', '/goim/nodes/instances')).json.data as Array<{ hostname: string }>;
  assert.deepEqual(instances.map((i) => i.hostname), ['a']);
  assert.deepEqual((await goim('GET', '/goim/nodes/weighted?platform=ios')).json.data.nodes, ['127.0.0.1']);
  // Counters come from the gateways once a second.
  await until('node a\'s delivered counter', async () => /outpost_comet_messages_delivered_total\{node="a"\} [1-9]/.test(await metrics()), 5000, 100);
});
