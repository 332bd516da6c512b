import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CometCluster, eventually, sleep, TcpClient, WsClient } from './comet-fixtures.ts';
import { goimError } from '../plugins/comet/api/envelope.ts';

const OK = { status: 200, json: { code: 0, message: '' } };

async function withCluster(fn: (c: CometCluster) => Promise<void>, config: Record<string, unknown> = {}): Promise<void> {
  const c = await CometCluster.start(['a', 'b'], config);
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

/** Waits until the controller's tables hold `n` connections (the feeds have arrived). */
const known = (c: CometCluster, n: number) => eventually(() => assert.equal(c.routing.totals().conns, n));

/** Gives pushes in flight their turn, then checks nothing more arrived than expected. */
const settle = () => sleep(100);

test('push/keys: keys on two agents each get the message once, body verbatim whatever it holds', () =>
  withCluster(async (c) => {
    const a1 = await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, key: 'a1', accepts: [1000] });
    const a2 = await TcpClient.authed(c.gateway('a').tcp.port, { mid: 2, key: 'a2', accepts: [1000] });
    const b1 = await WsClient.authed(c.gateway('b').wsUrl, { mid: 3, key: 'b1', accepts: [1000] });
    const other = await WsClient.authed(c.gateway('b').wsUrl, { mid: 4, key: 'b2', accepts: [1000] });
    await known(c, 4);
    const form = 'a=1&b=%20two';
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=1000&keys=a1&keys=a2&keys=b1&keys=nobody', form), OK);
    const binary = Buffer.from([0, 255, 1, 254]);
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=1000&keys=b1', binary), OK);
    await a1.until('message', () => a1.messages.length === 1);
    await a2.until('message', () => a2.messages.length === 1);
    await b1.until('messages', () => b1.messages.length === 2);
    await settle();
    assert.equal(a1.messages[0].body.toString(), form, 'a form body is not parsed');
    assert.equal(a2.messages[0].body.toString(), form);
    assert.deepEqual(b1.messages[1].body, binary);
    assert.equal(other.messages.length, 0);
    assert.equal(a1.messages.length + a2.messages.length, 2, 'once each');
    assert.deepEqual(c.sent.slice(0, 2).map((s) => [s.nodeId, s.msg.kind === 'keys' && s.msg.keys]), [['node-a', ['a1', 'a2']], ['node-b', ['b1']]], 'one message per node');
    for (const x of [a1, a2, b1, other]) x.close();
  }));

test('push/keys: gin parsing and goim answers', () =>
  withCluster(async (c) => {
    const k = await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, key: 'a', accepts: [1000] });
    await known(c, 1);
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=abc&keys=a'), { status: 400, json: { code: -400, message: 'strconv.ParseInt: parsing "abc": invalid syntax' } });
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=4294967296&keys=a'), { status: 400, json: { code: -400, message: 'strconv.ParseInt: parsing "4294967296": value out of range' } });
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=1000'), { status: 200, json: { code: -400, message: '' } }, 'no keys: goim answers -400 with HTTP 200');
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=1000&keys=a,b'), OK, 'commas are not split: one key "a,b", not connected');
    assert.deepEqual(await c.call('POST', '/goim/push/keys?keys=a', 'op zero'), OK, 'operation is optional: 0');
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=&keys=a', 'empty op'), OK, 'an empty int is 0');
    await k.until('two messages', () => k.messages.length === 2);
    await settle();
    assert.deepEqual(k.messages.map((m) => [m.op, m.body.toString()]), [[0, 'op zero'], [0, 'empty op']], 'op 0 < 1000 passes accepts');
    k.close();
  }));

test('push/mids: every key of each mid, wherever it is; gin parsing', () =>
  withCluster(async (c) => {
    const m1a = await WsClient.authed(c.gateway('a').wsUrl, { mid: 10, accepts: [1000] });
    const m1b = await TcpClient.authed(c.gateway('b').tcp.port, { mid: 10, accepts: [1000] });
    const m2 = await WsClient.authed(c.gateway('b').wsUrl, { mid: 20, accepts: [1000] });
    const zero = await WsClient.authed(c.gateway('a').wsUrl, { mid: 0, accepts: [1000] });
    await known(c, 4);
    assert.deepEqual(await c.call('POST', '/goim/push/mids?operation=1000&mids=10&mids=99&mids=10', 'to 10'), OK);
    assert.deepEqual(await c.call('POST', '/goim/push/mids?operation=1000&mids=1,2'), { status: 400, json: { code: -400, message: 'strconv.ParseInt: parsing "1,2": invalid syntax' } }, 'commas are not split');
    assert.deepEqual(await c.call('POST', '/goim/push/mids?operation=1000'), OK, 'no mids: nothing to do');
    assert.deepEqual(await c.call('POST', '/goim/push/mids?operation=1000&mids='), OK, 'an empty mid is 0, which goim never maps');
    await m1a.until('message', () => m1a.messages.length === 1);
    await m1b.until('message', () => m1b.messages.length === 1);
    await settle();
    assert.equal(m2.messages.length, 0);
    assert.equal(zero.messages.length, 0);
    assert.equal(m1a.messages[0].body.toString(), 'to 10');
    assert.deepEqual([m1a.messages.length, m1b.messages.length], [1, 1], 'a mid named twice: once');
    for (const x of [m1a, m1b, m2, zero]) x.close();
  }));

test('push/room: every connection in the room on every node, accepts ignored; required parameters', () =>
  withCluster(async (c) => {
    const a = await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, room_id: 'live://1000', accepts: [] });
    const b = await TcpClient.authed(c.gateway('b').tcp.port, { mid: 2, room_id: 'live://1000', accepts: [] });
    const elsewhere = await WsClient.authed(c.gateway('b').wsUrl, { mid: 3, room_id: 'live://2000', accepts: [1000] });
    await known(c, 3);
    assert.deepEqual(await c.call('POST', '/goim/push/room?operation=1000&type=live&room=1000', '{"test":1}'), OK);
    await a.until('message', () => a.messages.length === 1);
    await b.until('message', () => b.messages.length === 1);
    await settle();
    assert.equal(elsewhere.messages.length, 0);
    assert.equal(b.messages[0].body.toString(), '{"test":1}');
    assert.deepEqual(await c.call('POST', '/goim/push/room'), {
      status: 400,
      json: {
        code: -400,
        message: [
          "Key: '.Op' Error:Field validation for 'Op' failed on the 'required' tag",
          "Key: '.Type' Error:Field validation for 'Type' failed on the 'required' tag",
          "Key: '.Room' Error:Field validation for 'Room' failed on the 'required' tag",
        ].join('\n'),
      },
    });
    // goim issue #267: an unquoted & in the shell drops type and room.
    assert.deepEqual((await c.call('POST', '/goim/push/room?operation=1000')).json.message.split('\n').length, 2);
    assert.deepEqual((await c.call('POST', '/goim/push/room?operation=0&type=live&room=1000')).json.message, "Key: '.Op' Error:Field validation for 'Op' failed on the 'required' tag", 'a required int must be non-zero');
    assert.deepEqual((await c.call('POST', '/goim/push/room?operation=x&type=live&room=1000')).json.message, 'strconv.ParseInt: parsing "x": invalid syntax', 'parse errors come before validation');
    for (const x of [a, b, elsewhere]) x.close();
  }));

test('push/all: every node, accepts honoured, speed divided between the nodes as goim does', () =>
  withCluster(async (c) => {
    const yes = [await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, accepts: [1000] }), await TcpClient.authed(c.gateway('b').tcp.port, { mid: 2, accepts: [1000] })];
    const no = await WsClient.authed(c.gateway('b').wsUrl, { mid: 3, accepts: [1001] });
    await known(c, 3);
    assert.deepEqual(await c.call('POST', '/goim/push/all?operation=1000&speed=10', 'everyone'), OK);
    for (const y of yes) await y.until('message', () => y.messages.length === 1);
    await settle();
    assert.equal(no.messages.length, 0);
    assert.deepEqual(c.sent.map((s) => [s.nodeId, s.msg.kind === 'all' && s.msg.speed]), [['node-a', 5], ['node-b', 5]]);
    assert.deepEqual(await c.call('POST', '/goim/push/all?speed=10'), { status: 400, json: { code: -400, message: "Key: '.Op' Error:Field validation for 'Op' failed on the 'required' tag" } });
    assert.deepEqual((await c.call('POST', '/goim/push/all?operation=1000&speed=fast')).status, 400);
    for (const x of [...yes, no]) x.close();
  }));

test('online/top, online/room, online/total: counts across both nodes, goim parsing', () =>
  withCluster(async (c) => {
    const clients = [
      await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, room_id: 'live://1000' }),
      await WsClient.authed(c.gateway('b').wsUrl, { mid: 2, room_id: 'live://1000' }),
      await TcpClient.authed(c.gateway('b').tcp.port, { mid: 3, room_id: 'live://1000' }, '127.0.0.2'),
      await TcpClient.authed(c.gateway('a').tcp.port, { mid: 4, room_id: 'live://2000' }),
      await TcpClient.authed(c.gateway('a').tcp.port, { mid: 5, room_id: 'livefeed://7' }),
      await TcpClient.authed(c.gateway('a').tcp.port, { mid: 6, room_id: 'chat://1' }),
      await TcpClient.authed(c.gateway('a').tcp.port, { mid: 7 }),
    ];
    await known(c, 7);
    assert.deepEqual(await c.call('GET', '/goim/online/top?type=live&limit=10'), {
      status: 200,
      json: { code: 0, message: '', data: [{ room_id: '1000', count: 3 }, { room_id: '2000', count: 1 }, { room_id: '7', count: 1 }] },
    }, 'descending by count; type matches by prefix as goim (livefeed:// starts with "live")');
    assert.deepEqual((await c.call('GET', '/goim/online/top?type=live&limit=1')).json.data, [{ room_id: '1000', count: 3 }]);
    assert.deepEqual((await c.call('GET', '/goim/online/top?type=none&limit=5')).json.data, []);
    assert.deepEqual(await c.call('GET', '/goim/online/top?type=live'), { status: 400, json: { code: -400, message: "Key: '.Limit' Error:Field validation for 'Limit' failed on the 'required' tag" } });
    assert.deepEqual((await c.call('GET', '/goim/online/top?type=live&limit=ten')).json, { code: -400, message: 'strconv.ParseInt: parsing "ten": invalid syntax' });
    assert.equal((await c.call('GET', '/goim/online/top?type=live&limit=-1')).status, 400);
    assert.equal((await c.call('GET', '/goim/online/top?limit=3')).status, 400);
    assert.deepEqual(await c.call('GET', '/goim/online/room?type=live&rooms=1000&rooms=2000&rooms=3000&rooms=1000,2000'), {
      status: 200,
      json: { code: 0, message: '', data: { '1000': 3, '2000': 1, '3000': 0, '1000,2000': 0 } },
    });
    assert.deepEqual(await c.call('GET', '/goim/online/room?type=live'), { status: 400, json: { code: -400, message: "Key: '.Rooms' Error:Field validation for 'Rooms' failed on the 'required' tag" } });
    assert.deepEqual(await c.call('GET', '/goim/online/total'), { status: 200, json: { code: 0, message: '', data: { conn_count: 7, ip_count: 3 } } }, 'IPs are counted per node, as goim sums its comets');
    for (const x of clients) x.close();
    await known(c, 0);
    assert.deepEqual((await c.call('GET', '/goim/online/top?type=live&limit=10')).json.data, []);
  }));

test('heartbeat counts are cluster-wide once the controller sends each node its rooms’ totals', () =>
  withCluster(async (c) => {
    const a = await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, room_id: 'live://1000' }, { autoHeartbeat: false });
    const b = [await WsClient.authed(c.gateway('b').wsUrl, { mid: 2, room_id: 'live://1000' }), await TcpClient.authed(c.gateway('b').tcp.port, { mid: 3, room_id: 'live://1000' })];
    await known(c, 3);
    a.heartbeat();
    await a.until('op 3', () => a.frames.some((f) => f.op === 3));
    assert.equal(a.frames.filter((f) => f.op === 3)[0].body.readInt32BE(0), 1, 'before: the local count');
    c.refreshRoomCounts();
    a.heartbeat();
    await a.until('second op 3', () => a.frames.filter((f) => f.op === 3).length === 2);
    assert.equal(a.frames.filter((f) => f.op === 3)[1].body.readInt32BE(0), 3);
    a.close();
    for (const x of b) x.close();
  }));

test('nodes/weighted: goim’s reply shape, addresses ordered by goim’s weighting, each answer counted', () =>
  withCluster(async (c) => {
    const onA = [await WsClient.authed(c.gateway('a').wsUrl, { mid: 1 }), await WsClient.authed(c.gateway('a').wsUrl, { mid: 2 })];
    const onB = await WsClient.authed(c.gateway('b').wsUrl, { mid: 3 });
    await known(c, 3);
    const first = await c.call('GET', '/goim/nodes/weighted?platform=ios');
    assert.deepEqual(first, {
      status: 200,
      json: {
        code: 0,
        message: '',
        data: { tcp_port: 3101, ws_port: 3102, heartbeat: 240, nodes: ['10.0.0.2', '10.0.0.1'], backoff: { max_delay: 300, base_delay: 3, factor: 1.8, jitter: 0.3 }, heartbeat_max: 2 },
      },
    }, 'b has the smaller share of connections: offered first');
    assert.deepEqual(Object.keys(first.json.data as object), ['tcp_port', 'ws_port', 'heartbeat', 'nodes', 'backoff', 'heartbeat_max'], 'NodesReply field order, empty fields omitted');
    // That answer counted as a connection for b: now both weigh the same and the tie goes by node id.
    assert.deepEqual(((await c.call('GET', '/goim/nodes/weighted?platform=web')).json.data as { nodes: string[] }).nodes, ['10.0.0.1', '10.0.0.2']);
    for (const x of [...onA, onB]) x.close();
  }));

test('nodes/weighted: host domains for web when configured, the default domain when no node is up', async () => {
  const c = await CometCluster.start(['a', 'b'], { nodes: { domain: 'conn.example.test', hostDomain: '.example.test' }, wss: { port: 3103, cert: 'c.pem', key: 'k.pem' } });
  try {
    const x = [await WsClient.authed(c.gateway('a').wsUrl, { mid: 1 }), await WsClient.authed(c.gateway('a').wsUrl, { mid: 2 })];
    await known(c, 2);
    const data = (await c.call('GET', '/goim/nodes/weighted?platform=web')).json.data as Record<string, unknown>;
    assert.deepEqual(Object.keys(data), ['domain', 'tcp_port', 'ws_port', 'wss_port', 'heartbeat', 'nodes', 'backoff', 'heartbeat_max']);
    assert.deepEqual(data.nodes, ['b.example.test', 'a.example.test']);
    assert.equal(data.wss_port, 3103);
    for (const y of x) y.close();
    await c.kill('a');
    await c.kill('b');
    assert.deepEqual(((await c.call('GET', '/goim/nodes/weighted?platform=android')).json.data as Record<string, unknown>).nodes, ['conn.example.test']);
  } finally {
    await c.close();
  }
});

test('nodes/instances (and the seed’s /nodes/instances): discovery Instances with string metadata', () =>
  withCluster(async (c) => {
    const x = [await WsClient.authed(c.gateway('a').wsUrl, { mid: 1 }), await TcpClient.authed(c.gateway('a').tcp.port, { mid: 2 }, '127.0.0.2')];
    await known(c, 2);
    const r = await c.call('GET', '/goim/nodes/instances');
    assert.deepEqual(await c.call('GET', '/nodes/instances'), r);
    const list = r.json.data as Array<Record<string, unknown>>;
    assert.equal(list.length, 2);
    const a = list.find((i) => i.hostname === 'a')!;
    assert.deepEqual(Object.keys(a), ['region', 'zone', 'env', 'appid', 'hostname', 'addrs', 'version', 'latest_timestamp', 'metadata']);
    assert.deepEqual({ ...a, latest_timestamp: typeof a.latest_timestamp }, {
      region: 'sh', zone: 'sh001', env: '', appid: 'goim.comet', hostname: 'a', addrs: ['tcp://10.0.0.1:3101', 'ws://10.0.0.1:3102/sub'], version: '0.1.0', latest_timestamp: 'number',
      metadata: { addrs: '10.0.0.1', conn_count: '2', ip_count: '2', offline: 'false', weight: '10' },
    });
    for (const y of x) y.close();
  }));

test('a node that dies: its keys vanish at once, pushes to them answer 0 and deliver nothing elsewhere', () =>
  withCluster(async (c) => {
    const onA = await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, key: 'ka', room_id: 'live://1', accepts: [1000] });
    const onB = await WsClient.authed(c.gateway('b').wsUrl, { mid: 2, key: 'kb', room_id: 'live://1', accepts: [1000] });
    await known(c, 2);
    await c.kill('a');
    await onA.untilClosed();
    assert.deepEqual(c.routing.totals(), { conns: 1, ips: 1 });
    const before = c.sent.length;
    assert.deepEqual(await c.call('POST', '/goim/push/keys?operation=1000&keys=ka', 'lost'), OK);
    assert.deepEqual(await c.call('POST', '/goim/push/mids?operation=1000&mids=1', 'lost'), OK);
    assert.equal(c.sent.length, before, 'nothing was sent anywhere');
    assert.deepEqual((await c.call('GET', '/goim/online/room?type=live&rooms=1')).json.data, { '1': 1 });
    assert.deepEqual(await c.call('POST', '/goim/push/room?operation=1000&type=live&room=1', 'still here'), OK);
    await onB.until('room message', () => onB.messages.length === 1);
    await settle();
    assert.deepEqual(onB.messages.map((m) => m.body.toString()), ['still here']);
    assert.equal(((await c.call('GET', '/goim/nodes/instances')).json.data as unknown[]).length, 1);
    onB.close();
  }));

test('the same key on another node: the newer connection owns it, the older one is reported to kick', () =>
  withCluster(async (c) => {
    const older = await WsClient.authed(c.gateway('a').wsUrl, { mid: 1, key: 'same', accepts: [1000] });
    await known(c, 1);
    const newer = await WsClient.authed(c.gateway('b').wsUrl, { mid: 1, key: 'same', accepts: [1000] });
    await known(c, 2);
    assert.deepEqual(c.displaced, [{ nodeId: 'node-a', key: 'same' }]);
    await c.call('POST', '/goim/push/keys?operation=1000&keys=same', 'to the newer');
    await newer.until('message', () => newer.messages.length === 1);
    await settle();
    assert.equal(older.messages.length, 0);
    newer.close();
    await known(c, 1);
    await c.call('POST', '/goim/push/mids?operation=1000&mids=1', 'back to the older');
    await older.until('message', () => older.messages.length === 1);
    older.close();
  }));

test('the envelope for what the host refuses keeps goim’s shape', () => {
  assert.deepEqual(goimError(401, 'admin token required'), { status: 401, json: { code: -400, message: 'admin token required' } });
  assert.deepEqual(goimError(500, 'internal error'), { status: 500, json: { code: -500, message: 'internal error' } });
});
