import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { ChangeBatch } from '../plugins/comet/gateway/change-feed.ts';
import { HEADER_LEN } from '../plugins/comet/protocol/frame.ts';
import { eventually, memoryLog, sleep, splitFrames, startGateway, TcpClient, WsClient, type TestGateway } from './comet-fixtures.ts';

async function withGateway(config: Record<string, unknown>, fn: (g: TestGateway) => Promise<void>, hooks = {}, log?: ReturnType<typeof memoryLog>['log']): Promise<void> {
  const g = await startGateway(config, hooks, log);
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

const body = (s: string) => Buffer.from(s);

test('accepts: key, mid and all pushes honour them, room pushes do not; ops below 1000 always pass', () =>
  withGateway({}, async (g) => {
    const watcher = await WsClient.authed(g.wsUrl, { mid: 1, key: 'w', room_id: 'live://1', accepts: [1000] });
    const deaf = await TcpClient.authed(g.tcp.port, { mid: 1, key: 'd', room_id: 'live://1', accepts: [] });
    assert.equal(g.gateway.pushKeys(['w', 'd'], 1000, body('keys')), 1);
    assert.equal(g.gateway.pushMids(['1'], 1000, body('mids')), 1);
    g.gateway.pushAll(1000, body('all'));
    g.gateway.pushRoom('live://1', 1000, body('room'));
    assert.equal(g.gateway.pushKeys(['w', 'd'], 5, body('low op')), 2, 'op 5 < 1000 reaches both');
    await watcher.until('5 messages', () => watcher.messages.length === 5);
    await deaf.until('2 messages', () => deaf.messages.length === 2);
    assert.deepEqual(watcher.messages.map((m) => m.body.toString()).sort(), ['all', 'keys', 'low op', 'mids', 'room']);
    assert.deepEqual(deaf.messages.map((m) => m.body.toString()).sort(), ['low op', 'room']);
    assert.equal(g.gateway.pushKeys(['nobody'], 1000, body('x')), 0, 'unknown keys are skipped');
    watcher.close();
    deaf.close();
  }));

test('delivery shape: WebSocket gets one op-9 message of inner frames, TCP the same inner frames bare', () =>
  withGateway({}, async (g) => {
    const w = await WsClient.authed(g.wsUrl, { mid: 1, key: 'w', accepts: [1000] }, { autoHeartbeat: false });
    const t = await TcpClient.authed(g.tcp.port, { mid: 2, key: 't', accepts: [1000] });
    g.gateway.pushKeys(['w', 't'], 1000, body('{"test":1}'));
    await w.until('message', () => w.messages.length === 1);
    await t.until('message', () => t.messages.length === 1);
    const msg = w.raw.at(-1)!;
    const inner = Buffer.from('0000001a001000010000' + '03e8' + '00000000', 'hex');
    assert.deepEqual(msg, Buffer.concat([Buffer.from('0000002a001000010000000900000000', 'hex'), inner, body('{"test":1}')]));
    assert.deepEqual(t.messages[0], { ver: 1, op: 1000, seq: 0, body: body('{"test":1}'), packLen: 26 });
    w.close();
    t.close();
  }));

test('room pushes of the same turn leave as one batch: one op-9 message carrying every message, in order', () =>
  withGateway({ delivery: { roomBatchMs: 0 } }, async (g) => {
    const w = await WsClient.authed(g.wsUrl, { mid: 1, room_id: 'live://7' }, { autoHeartbeat: false });
    const t = await TcpClient.authed(g.tcp.port, { mid: 2, room_id: 'live://7' });
    for (let i = 0; i < 3; i++) g.gateway.pushRoom('live://7', 2000 + i, body(`m${i}`));
    await w.until('3 messages', () => w.messages.length === 3);
    await t.until('3 messages', () => t.messages.length === 3);
    const ops = w.frames.map((f) => f.op);
    assert.deepEqual(ops, [8, 9], 'one WebSocket message for the three');
    assert.deepEqual(w.messages.map((m) => [m.op, m.body.toString()]), [[2000, 'm0'], [2001, 'm1'], [2002, 'm2']]);
    assert.deepEqual(t.messages.map((m) => [m.op, m.body.toString()]), [[2000, 'm0'], [2001, 'm1'], [2002, 'm2']]);
    g.gateway.pushRoom('live://nobody-here', 1000, body('x'));
    w.close();
    t.close();
  }));

test('a full room batch leaves at once; the next starts a new one', () =>
  withGateway({ delivery: { roomBatchMs: 50, roomBatchMessages: 2 } }, async (g) => {
    const w = await WsClient.authed(g.wsUrl, { mid: 1, room_id: 'live://8' }, { autoHeartbeat: false });
    for (let i = 0; i < 5; i++) g.gateway.pushRoom('live://8', 1000, body(`m${i}`));
    await w.until('5 messages', () => w.messages.length === 5);
    const perMessage = w.raw.slice(1).map((m) => splitFrames(m.subarray(HEADER_LEN)).length);
    assert.deepEqual(perMessage, [2, 2, 1]);
    assert.deepEqual(w.messages.map((m) => m.body.toString()), ['m0', 'm1', 'm2', 'm3', 'm4']);
    w.close();
  }));

test('push/all with a speed still reaches every connection that accepts the op, once', () =>
  withGateway({}, async (g) => {
    const clients = await Promise.all(Array.from({ length: 6 }, (_, i) => WsClient.authed(g.wsUrl, { mid: i + 1, accepts: i < 5 ? [1000] : [] }, { autoHeartbeat: false })));
    g.gateway.pushAll(1000, body('paced'), 20);
    await Promise.all(clients.slice(0, 5).map((c) => c.until('message', () => c.messages.length === 1)));
    await sleep(300);
    assert.deepEqual(clients.map((c) => c.messages.length), [1, 1, 1, 1, 1, 0]);
    for (const c of clients) c.close();
  }));

test('slow consumer: past the send-buffer limit messages are dropped and counted, logged once, and the connection is closed', async () => {
  const mem = memoryLog();
  await withGateway(
    { delivery: { sendBufferBytes: 4096, slowCloseMs: 300 } },
    async (g) => {
      const slowTcp = await TcpClient.authed(g.tcp.port, { mid: 1, key: 'slow-tcp', room_id: 'live://s', accepts: [1000] });
      const slowWs = await WsClient.authed(g.wsUrl, { mid: 2, key: 'slow-ws', room_id: 'live://s', accepts: [1000] }, { autoHeartbeat: false });
      const fast = await WsClient.authed(g.wsUrl, { mid: 3, key: 'fast', room_id: 'live://s', accepts: [1000] }, { autoHeartbeat: false });
      const wsSocket = (slowWs.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      slowTcp.sock.pause();
      wsSocket.pause();
      const big = Buffer.alloc(4000, 0x61);
      // The kernel's socket buffers take megabytes before the gateway's own limit is reached.
      for (let i = 0; i < 20_000 && g.gateway.stats.closed.slow < 2; i++) {
        g.gateway.pushKeys(['slow-tcp', 'slow-ws', 'fast'], 1000, big);
        if (i % 50 === 0) await sleep(5);
      }
      // A paused socket sees its end only once it reads again.
      slowTcp.sock.resume();
      wsSocket.resume();
      await slowTcp.untilClosed(10_000);
      await slowWs.untilClosed(10_000);
      assert.ok(g.gateway.stats.dropped > 0, 'messages were dropped');
      assert.equal(g.gateway.stats.closed.slow, 2);
      assert.equal(fast.closed, false, 'a client that reads is not affected');
      const warned = mem.lines.filter((l) => l.msg === 'comet slow consumer: messages dropped');
      assert.deepEqual(warned.map((l) => l.key).sort(), ['slow-tcp', 'slow-ws'], 'one line per connection within the rate limit');
      assert.ok(warned.every((l) => (l.dropped as number) >= 1 && l.limit === 4096));
      fast.close();
    },
    {},
    mem.log,
  );
});

test('counts: registered connections and distinct client IPs (goim counts only authenticated channels)', () =>
  withGateway({}, async (g) => {
    const a = await TcpClient.authed(g.tcp.port, { mid: 1 }, '127.0.0.1');
    const b = await TcpClient.authed(g.tcp.port, { mid: 2 }, '127.0.0.2');
    const c = await TcpClient.authed(g.tcp.port, { mid: 3 }, '127.0.0.2');
    const pending = await TcpClient.open(g.tcp.port, '127.0.0.3');
    await eventually(() => assert.deepEqual(g.gateway.counts(), { conns: 3, ips: 2, rooms: 0, handshaking: 1 }));
    b.close();
    await eventually(() => assert.deepEqual(g.gateway.counts(), { conns: 2, ips: 2, rooms: 0, handshaking: 1 }));
    c.close();
    a.close();
    pending.close();
    await eventually(() => assert.deepEqual(g.gateway.counts(), { conns: 0, ips: 0, rooms: 0, handshaking: 0 }));
  }));

test('change feed: batched deltas (not one per connection), seq in order, and a snapshot that matches', async () => {
  const batches: ChangeBatch[] = [];
  await withGateway(
    { feedIntervalMs: 50 },
    async (g) => {
      const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => WsClient.authed(g.wsUrl, { mid: i + 1, key: `k${i}`, room_id: 'live://f' }, { autoHeartbeat: false })));
      assert.ok(batches.length < 20, `${batches.length} batches for 20 connections`);
      assert.deepEqual(new Set(batches.flatMap((b) => b.upserts.map((u) => u[0]))), new Set(clients.map((_, i) => `k${i}`)));
      const mark = batches.length;
      clients[0].send(1, 12, 1, body('live://g'));
      clients[1].close();
      await eventually(() => {
        assert.deepEqual(batches.slice(mark).flatMap((b) => b.upserts), [['k0', '1', 'live://g']]);
        assert.deepEqual(batches.slice(mark).flatMap((b) => b.removes), ['k1']);
        assert.equal(batches.at(-1)!.conns, 19);
      });
      const last = batches.at(-1)!;
      assert.equal(last.ips, 1);
      assert.deepEqual(batches.map((b) => b.seq), batches.map((_, i) => i + 1));
      assert.ok(batches.every((b) => b.epoch === batches[0].epoch));
      const snap = g.gateway.snapshot();
      assert.equal(snap.seq, last.seq);
      assert.equal(snap.conns.length, 19);
      assert.deepEqual(snap.conns.find((c) => c[0] === 'k0'), ['k0', '1', 'live://g']);
      for (const c of clients) c.close();
    },
    { onChanges: (b: ChangeBatch) => void batches.push(b) },
  );
});

test('JWT: the token must verify and its sub must be the mid; otherwise no op 8 and the connection closes', async () => {
  const secret = 'a-shared-secret-of-32-bytes-long!';
  const hs = (claims: Record<string, unknown>, exp = '5m') => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setAudience('goim').setIssuer('app').setExpirationTime(exp).sign(new TextEncoder().encode(secret));
  const ed = await generateKeyPair('EdDSA', { extractable: true });
  const dir = await mkdtemp(join(tmpdir(), 'comet-jwks-'));
  const jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(ed.publicKey)), alg: 'EdDSA' }] }));
  try {
    await withGateway({ auth: { jwt: { secret, jwksFile, audience: 'goim', issuer: 'app' } } }, async (g) => {
      const ok = await WsClient.authed(g.wsUrl, { mid: 42, token: await hs({ sub: '42' }) });
      const edToken = await new SignJWT({ sub: '43' }).setProtectedHeader({ alg: 'EdDSA' }).setAudience('goim').setIssuer('app').setExpirationTime('5m').sign(ed.privateKey);
      const okEd = await TcpClient.authed(g.tcp.port, { mid: 43, token: edToken });
      const refused = {
        'no token': { mid: 42 },
        'sub is another mid': { mid: 7, token: await hs({ sub: '42' }) },
        expired: { mid: 42, token: await hs({ sub: '42' }, '-1m') },
        'other audience': { mid: 42, token: await new SignJWT({ sub: '42' }).setProtectedHeader({ alg: 'HS256' }).setAudience('x').setIssuer('app').setExpirationTime('5m').sign(new TextEncoder().encode(secret)) },
        'wrong secret': { mid: 42, token: await new SignJWT({ sub: '42' }).setProtectedHeader({ alg: 'HS256' }).setAudience('goim').setIssuer('app').setExpirationTime('5m').sign(new TextEncoder().encode('another-secret-of-32-bytes-long!!')) },
        garbage: { mid: 42, token: 'not.a.jwt' },
      };
      for (const [why, auth] of Object.entries(refused)) {
        const c = await WsClient.open(g.wsUrl, JSON.stringify(auth));
        await c.untilClosed();
        assert.equal(c.frames.length, 0, why);
      }
      assert.equal(g.gateway.counts().conns, 2);
      assert.equal(g.gateway.stats.authRefused, Object.keys(refused).length);
      ok.close();
      okEd.close();
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('limits: past maxConnections a new connection is refused at once', () =>
  withGateway({ limits: { maxConnections: 2 } }, async (g) => {
    const a = await WsClient.authed(g.wsUrl);
    const b = await TcpClient.authed(g.tcp.port);
    const c = await WsClient.open(g.wsUrl, null);
    await c.untilClosed();
    assert.equal(c.closeCode, 1013);
    const d = await TcpClient.open(g.tcp.port);
    await d.untilClosed();
    assert.equal(g.gateway.stats.refused, 2);
    a.close();
    b.close();
  }));

test('limits: past maxHandshaking, connections that have not authenticated yet are refused', () =>
  withGateway({ limits: { maxHandshaking: 1 } }, async (g) => {
    const idle = await TcpClient.open(g.tcp.port);
    await eventually(() => assert.equal(g.gateway.counts().handshaking, 1));
    const refused = await WsClient.open(g.wsUrl, null);
    await refused.untilClosed();
    assert.equal(refused.closeCode, 1013);
    idle.send(1, 7, 1, body('{"mid":1}'));
    await idle.until('op 8', () => idle.frames.length === 1);
    const next = await WsClient.authed(g.wsUrl, { mid: 2 });
    assert.equal(g.gateway.counts().conns, 2, 'once authenticated, a connection no longer counts against the limit');
    idle.close();
    next.close();
  }));

test('gateway close ends every connection', async () => {
  const g = await startGateway();
  const a = await WsClient.authed(g.wsUrl);
  const b = await TcpClient.authed(g.tcp.port);
  await g.close();
  await a.untilClosed();
  await b.untilClosed();
  assert.equal(g.gateway.stats.closed.shutdown, 2);
});
