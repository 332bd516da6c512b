import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenWebSocket } from '../plugins/comet/listeners/ws.ts';
import { encodeFrame } from '../plugins/comet/protocol/frame.ts';
import { JS_CLIENT_AUTH, sleep, startGateway, TcpClient, TEST_TLS, WsClient, type TestGateway } from './comet-fixtures.ts';

async function withGateway(config: Record<string, unknown>, fn: (g: TestGateway) => Promise<void>): Promise<void> {
  const g = await startGateway(config);
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

const keysOf = (g: TestGateway) => g.gateway.snapshot().conns.map((c) => c[0]);

test('goim JS client: op 7 → op 8 (empty body, ver and seq echoed), heartbeat → op 3 with the room count', () =>
  withGateway({}, async (g) => {
    const c = await WsClient.authed(g.wsUrl);
    await c.until('op 3', () => c.frames.some((f) => f.op === 3));
    const [auth, hb] = c.frames;
    assert.deepEqual({ ...auth, body: auth.body.length }, { packLen: 16, ver: 1, op: 8, seq: 1, body: 0 });
    assert.deepEqual({ packLen: hb.packLen, ver: hb.ver, op: hb.op, seq: hb.seq }, { packLen: 20, ver: 1, op: 3, seq: 1 });
    assert.equal(hb.body.readInt32BE(0), 1, 'one connection in live://1000');
    const d = await WsClient.authed(g.wsUrl, { mid: 2, room_id: 'live://1000', accepts: [] }, { autoHeartbeat: false });
    d.send(1, 2, 77);
    await d.until('op 3', () => d.frames.some((f) => f.op === 3));
    assert.equal(d.frames.find((f) => f.op === 3)!.body.readInt32BE(0), 2);
    assert.equal(d.frames.find((f) => f.op === 3)!.seq, 77);
    assert.ok(c.raw.every((m) => m.length === m.readInt32BE(0)), 'every reply is exactly one frame per message');
    c.close();
    d.close();
  }));

test('goim TCP benchmark client: ver 0 heartbeats are answered with ver 0, the stream carries frames back to back', () =>
  withGateway({}, async (g) => {
    const c = await TcpClient.authed(g.tcp.port);
    c.heartbeat();
    c.heartbeat();
    await c.until('two op 3', () => c.frames.filter((f) => f.op === 3).length === 2);
    const hb = c.frames.filter((f) => f.op === 3);
    assert.deepEqual(hb.map((f) => [f.ver, f.seq, f.packLen, f.body.readInt32BE(0)]), [[0, 0, 20, 1], [0, 0, 20, 1]]);
    // Auth, heartbeat and a room change written byte by byte: the stream decoder reassembles them.
    const d = await TcpClient.open(g.tcp.port);
    const bytes = Buffer.concat([encodeFrame(1, 7, 5, Buffer.from('{"mid":9,"room_id":"test://1"}')), encodeFrame(1, 2, 6), encodeFrame(1, 12, 7, Buffer.from('test://2'))]);
    for (const byte of bytes) {
      d.sock.write(Buffer.from([byte]));
      await sleep(0);
    }
    await d.until('op 8, 3, 13', () => d.frames.length === 3);
    assert.deepEqual(d.frames.map((f) => [f.op, f.seq]), [[8, 5], [3, 6], [13, 7]]);
    assert.equal(d.frames[1].body.readInt32BE(0), 2, 'heartbeat counts test://1 (c and d)');
    c.close();
    d.close();
  }));

test('frames before op 7 are ignored; op 7 still works after them', () =>
  withGateway({}, async (g) => {
    const c = await WsClient.open(g.wsUrl, null, { autoHeartbeat: false });
    c.send(1, 2, 1);
    c.send(1, 4, 1, Buffer.from('x'));
    c.send(1, 7, 3, Buffer.from(JS_CLIENT_AUTH));
    await c.until('op 8', () => c.authed);
    assert.deepEqual(c.frames.map((f) => [f.op, f.seq]), [[8, 3]], 'nothing answered before auth');
    c.close();
  }));

test('a body that is not JSON, or mid as a string: no reply, connection closed', () =>
  withGateway({}, async (g) => {
    for (const body of ['not json', '{"mid":"123"}']) {
      const w = await WsClient.open(g.wsUrl, body, { autoHeartbeat: false });
      await w.untilClosed();
      assert.equal(w.frames.length, 0, `ws ${body}`);
      const t = await TcpClient.open(g.tcp.port);
      t.send(1, 7, 1, Buffer.from(body));
      await t.untilClosed();
      assert.equal(t.frames.length, 0, `tcp ${body}`);
    }
    assert.equal(g.gateway.counts().conns, 0);
    assert.equal(g.gateway.stats.authRefused, 4);
  }));

test('op 12 changes room and echoes the body in op 13; an empty body leaves the room', () =>
  withGateway({}, async (g) => {
    const a = await WsClient.authed(g.wsUrl, { mid: 1, room_id: 'live://1' });
    const b = await WsClient.authed(g.wsUrl, { mid: 2, room_id: 'live://2' });
    a.send(1, 12, 4, Buffer.from('live://2'));
    await a.until('op 13', () => a.frames.some((f) => f.op === 13));
    const r = a.frames.find((f) => f.op === 13)!;
    assert.deepEqual([r.ver, r.seq, r.body.toString()], [1, 4, 'live://2']);
    a.send(1, 2, 5);
    await a.until('op 3', () => a.frames.filter((f) => f.op === 3).length === 2);
    assert.equal(a.frames.filter((f) => f.op === 3)[1].body.readInt32BE(0), 2, 'both in live://2 now');
    assert.deepEqual(g.gateway.roomSizes(), [['live://2', 2]], 'live://1 was deleted when it emptied');
    a.send(1, 12, 6);
    await a.until('second op 13', () => a.frames.filter((f) => f.op === 13).length === 2);
    assert.equal(a.frames.filter((f) => f.op === 13)[1].body.length, 0);
    assert.deepEqual(g.gateway.roomSizes(), [['live://2', 1]]);
    a.send(1, 2, 7);
    await a.until('op 3', () => a.frames.filter((f) => f.op === 3).length === 3);
    assert.equal(a.frames.filter((f) => f.op === 3)[2].body.readInt32BE(0), 2, 'out of any room: the last count is sent again, as goim does');
    a.close();
    b.close();
  }));

test('op 14/16 add and remove watched ops, echoed in op 15/17; a list that does not parse is ignored silently', () =>
  withGateway({}, async (g) => {
    const c = await WsClient.authed(g.wsUrl, { mid: 5, key: 'k5', accepts: [] });
    const push = (op: number) => g.gateway.pushKeys(['k5'], op, Buffer.from(String(op)));
    assert.equal(push(1000), 0, 'not watched');
    c.send(1, 14, 2, Buffer.from('1000,1001'));
    await c.until('op 15', () => c.frames.some((f) => f.op === 15));
    assert.deepEqual([c.frames.at(-1)!.seq, c.frames.at(-1)!.body.toString()], [2, '1000,1001']);
    assert.equal(push(1000), 1);
    assert.equal(push(1001), 1);
    c.send(1, 16, 3, Buffer.from('1001'));
    c.send(1, 16, 4, Buffer.from('1000,oops'));
    await c.until('two op 17', () => c.frames.filter((f) => f.op === 17).length === 2);
    assert.deepEqual(c.frames.filter((f) => f.op === 17).map((f) => f.body.toString()), ['1001', '1000,oops'], 'both echoed');
    assert.equal(push(1001), 0, 'unsubscribed');
    assert.equal(push(1000), 1, 'the list that did not parse removed nothing');
    await c.until('messages', () => c.messages.length === 3);
    assert.deepEqual(c.messages.map((m) => m.op), [1000, 1001, 1000]);
    c.close();
  }));

test('any other op after auth is echoed with no body (goim Operate default), op 7 included', () =>
  withGateway({}, async (g) => {
    const c = await WsClient.authed(g.wsUrl);
    c.send(1, 4, 11, Buffer.from('hello'));
    c.send(3, 7, 12, Buffer.from(JS_CLIENT_AUTH));
    c.send(1, 5000, 13, Buffer.from('x'));
    await c.until('three echoes', () => c.frames.length >= 5);
    assert.deepEqual(c.frames.slice(2).map((f) => [f.ver, f.op, f.seq, f.packLen]), [[1, 4, 11, 16], [3, 7, 12, 16], [1, 5000, 13, 16]]);
    assert.equal(g.gateway.counts().conns, 1, 'a second op 7 does not register again');
    c.close();
  }));

test('frame limits: a 4096-byte body is read, 4097 closes without any error frame (WebSocket and TCP)', () =>
  withGateway({}, async (g) => {
    const w = await WsClient.authed(g.wsUrl);
    w.send(1, 4, 1, Buffer.alloc(4096, 0x61));
    await w.until('echo', () => w.frames.some((f) => f.op === 4));
    w.send(1, 4, 2, Buffer.alloc(4097, 0x61));
    await w.untilClosed();
    assert.ok(!w.frames.some((f) => f.seq === 2));
    assert.equal(w.closeCode, 1006, 'uWS cuts a message longer than a goim frame may be (maxPayloadLength 4112), no close frame');
    const t = await TcpClient.authed(g.tcp.port);
    t.send(1, 4, 1, Buffer.alloc(4096, 0x61));
    await t.until('echo', () => t.frames.some((f) => f.op === 4));
    t.send(1, 4, 2, Buffer.alloc(4097, 0x61));
    await t.untilClosed();
    assert.equal(t.frames.length, 2, 'op 8 and the first echo only');
    const h = await TcpClient.authed(g.tcp.port);
    const bad = encodeFrame(1, 2, 1);
    bad.writeInt16BE(20, 4);
    h.sock.write(bad);
    await h.untilClosed();
    assert.equal(h.frames.length, 1, 'headerLen ≠ 16 closes');
    assert.equal(g.gateway.stats.closed.frame, 2, 'the two TCP refusals; the WebSocket one was closed by uWS');
  }));

test('WebSocket: text messages are read like binary ones; replies are binary; only /sub upgrades', () =>
  withGateway({}, async (g) => {
    const c = await WsClient.open(g.wsUrl, null);
    c.sendRaw(encodeFrame(1, 7, 1, Buffer.from(JS_CLIENT_AUTH)).toString('latin1'));
    await c.until('op 8', () => c.authed);
    await c.until('op 3', () => c.frames.some((f) => f.op === 3));
    c.close();
    const other = new WebSocket(`ws://127.0.0.1:${g.ws.port}/other`);
    const status = await new Promise<number>((resolve) => {
      other.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      other.once('open', () => resolve(101));
      other.once('error', () => resolve(-1));
    });
    other.terminate();
    assert.equal(status, 404);
  }));

test('an empty key gets a server-generated uuid, never sent to the client', () =>
  withGateway({}, async (g) => {
    const c = await WsClient.authed(g.wsUrl);
    const [key] = keysOf(g);
    assert.match(key, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(c.frames[0].body.length, 0);
    assert.equal(g.gateway.pushKeys([key], 1000, Buffer.from('to the uuid')), 1);
    await c.until('message', () => c.messages.length === 1);
    c.close();
  }));

test('the same key again closes the older connection (goim Bucket.Put)', () =>
  withGateway({}, async (g) => {
    const old = await WsClient.authed(g.wsUrl, { mid: 1, key: 'dup', accepts: [1000] });
    const oldTcp = await TcpClient.authed(g.tcp.port, { mid: 1, key: 'dup2', accepts: [1000] });
    const fresh = await TcpClient.authed(g.tcp.port, { mid: 1, key: 'dup', accepts: [1000] });
    await old.untilClosed();
    assert.equal(old.closeCode, 4001);
    const fresh2 = await WsClient.authed(g.wsUrl, { mid: 1, key: 'dup2', accepts: [1000] });
    await oldTcp.untilClosed();
    assert.deepEqual(keysOf(g).sort(), ['dup', 'dup2']);
    assert.equal(g.gateway.counts().conns, 2);
    assert.equal(g.gateway.pushKeys(['dup', 'dup2'], 1000, Buffer.from('m')), 2);
    await fresh.until('message', () => fresh.messages.length === 1);
    await fresh2.until('message', () => fresh2.messages.length === 1);
    assert.equal(g.gateway.pushMids(['1'], 1000, Buffer.from('m')), 2, 'the kicked ones left the mid index too');
    await fresh.until('mid message', () => fresh.messages.length === 2);
    assert.equal(g.gateway.stats.closed.kicked, 2);
    assert.equal(g.gateway.kick('dup'), 1, 'the controller may kick a key too');
    assert.equal(g.gateway.kick('dup'), 0);
    await fresh.untilClosed();
    fresh.close();
    fresh2.close();
  }));

test('handshake timeout: a connection without op 7 is closed; so is one that never sends a heartbeat', () =>
  withGateway({ handshakeTimeoutMs: 200, heartbeat: { seconds: 1, max: 1 } }, async (g) => {
    const silentWs = await WsClient.open(g.wsUrl, null);
    const silentTcp = await TcpClient.open(g.tcp.port);
    await silentWs.untilClosed();
    await silentTcp.untilClosed();
    assert.equal(silentWs.closeCode, 4002);
    assert.equal(g.gateway.stats.closed['handshake-timeout'], 2);
    const quiet = await WsClient.authed(g.wsUrl, JS_CLIENT_AUTH, { autoHeartbeat: false });
    const beating = await TcpClient.authed(g.tcp.port);
    const beat = setInterval(() => beating.heartbeat(), 200);
    await quiet.untilClosed();
    clearInterval(beat);
    assert.equal(quiet.closeCode, 4003);
    assert.equal(beating.closed, false, 'heartbeats keep a connection');
    assert.equal(g.gateway.stats.closed['heartbeat-timeout'], 1);
    beating.close();
  }));

test('registration happens before op 8: a push issued when the registration hook completes arrives right after op 8', async () => {
  let gateway: TestGateway['gateway'] | undefined;
  const pushed: number[] = [];
  const g = await startGateway({}, {
    onRegister: async (conn) => {
      // Like a controller routing a push to the key it was just told about, before the client saw op 8.
      await sleep(20);
      queueMicrotask(() => pushed.push(gateway!.pushKeys([conn.key], 1000, Buffer.from(`welcome ${conn.key}`))));
    },
  });
  gateway = g.gateway;
  try {
    const c = await WsClient.authed(g.wsUrl, { mid: 3, key: 'early', accepts: [1000] }, { autoHeartbeat: false });
    await c.until('message', () => c.messages.length === 1);
    assert.deepEqual(c.frames.map((f) => f.op), [8, 9], 'op 8 first, the push right after it');
    assert.equal(c.messages[0].body.toString(), 'welcome early');
    assert.deepEqual(pushed, [1], 'the push was accepted for the connection');
    const t = await TcpClient.authed(g.tcp.port, { mid: 4, key: 'early-tcp', accepts: [1000] });
    await t.until('message', () => t.frames.length === 2);
    assert.deepEqual(t.frames.map((f) => f.op), [8, 1000]);
    c.close();
    t.close();
  } finally {
    await g.close();
  }
});

test('a registration hook that throws refuses the connection: no op 8, tables clean', async () => {
  const g = await startGateway({}, { onRegister: () => Promise.reject(new Error('controller says no')) });
  try {
    const c = await WsClient.open(g.wsUrl);
    await c.untilClosed();
    assert.equal(c.frames.length, 0);
    assert.deepEqual(g.gateway.counts(), { conns: 0, ips: 0, rooms: 0, handshaking: 0 });
  } finally {
    await g.close();
  }
});

test('frames sent before op 8 arrives are answered after it, in order', async () => {
  const g = await startGateway({}, { onRegister: async () => void (await sleep(30)) });
  try {
    const c = await WsClient.open(g.wsUrl, null, { autoHeartbeat: false });
    c.send(1, 7, 1, Buffer.from(JS_CLIENT_AUTH));
    c.send(1, 2, 2);
    c.send(1, 12, 3, Buffer.from('live://5'));
    await c.until('three replies', () => c.frames.length === 3);
    assert.deepEqual(c.frames.map((f) => [f.op, f.seq]), [[8, 1], [3, 2], [13, 3]]);
    c.close();
  } finally {
    await g.close();
  }
});

test('WSS: the same protocol over TLS when a certificate and key are configured', () =>
  withGateway({}, async (g) => {
    const dir = await mkdtemp(join(tmpdir(), 'comet-tls-'));
    try {
      await writeFile(join(dir, 'cert.pem'), TEST_TLS.cert);
      await writeFile(join(dir, 'key.pem'), TEST_TLS.key, { mode: 0o600 });
      const wss = await listenWebSocket({ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } }, g.gateway);
      try {
        const ws = new WebSocket(`wss://127.0.0.1:${wss.port}/sub`, { ca: TEST_TLS.cert });
        const frames: number[] = [];
        ws.on('message', (d: Buffer) => frames.push(d.readInt32BE(8)));
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        ws.send(encodeFrame(1, 7, 1, Buffer.from(JS_CLIENT_AUTH)));
        ws.send(encodeFrame(1, 2, 2));
        const t0 = Date.now();
        while (frames.length < 2 && Date.now() - t0 < 5000) await sleep(10);
        assert.deepEqual(frames, [8, 3]);
        assert.equal(g.gateway.counts().conns, 1);
        ws.terminate();
      } finally {
        await wss.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }));

test('a client flooding frames while its auth is in flight is closed (memory stays bounded)', async () => {
  const g = await startGateway({}, { onRegister: async () => void (await sleep(200)) });
  try {
    const c = await WsClient.open(g.wsUrl, null, { autoHeartbeat: false });
    c.send(1, 7, 1, Buffer.from(JS_CLIENT_AUTH));
    for (let i = 0; i < 17; i++) c.send(1, 2, i);
    await c.untilClosed();
    assert.equal(c.closeCode, 1008);
    assert.equal(c.frames.length, 0, 'no op 8 for it');
    assert.equal(g.gateway.stats.closed.flood, 1);
  } finally {
    await g.close();
  }
});
