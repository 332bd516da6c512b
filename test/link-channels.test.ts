/**
 * Best-effort link channels (issue 10 §4) through the real link: a real controller and real agents
 * (in this process, so the test holds each host's channel hub the way the plugin runner does), and a
 * hand-driven agent for what a real one would not do (stop reading, send malformed frames).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import WebSocket, { WebSocketServer } from 'ws';
import { http, tempDir, until, sleep } from './helpers/cluster.ts';
import { localAgent, localController, type LocalAgent, type LocalController } from './helpers/in-process.ts';
import { openRawLink, sampleReport } from './helpers/raw-link.ts';
import { parsePrometheus, valueOf } from './helpers/prom.ts';
import { decodeBinaryMessage } from '../runtime/link-codec.ts';
import { ChannelHub } from '../runtime/channels.ts';
import { LinkClient } from '../agent/link-client.ts';
import { AgentOutbox } from '../agent/outbox.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { createLog } from '../plugins/sdk/log.ts';

const RING = 100;
let c: LocalController;
let agents: LocalAgent[];

before(async () => {
  // upAfter far away: every node here stays connected but not counted up, and must still get its messages.
  c = await localController({ heartbeat: { intervalMs: 200, downAfter: 3, upAfter: 100_000 }, channels: { highWaterMark: 64 * 1024, queueMessages: RING, queueBytes: 64 * 1024 * 1024 } });
  agents = [];
  for (let i = 0; i < 3; i++) agents.push(await localAgent(c));
  await until('every agent link open', () => agents.every((a) => c.channels.isOpen(a.nodeId)));
});
after(async () => {
  for (const a of agents) await a.close();
  await c?.close();
});

async function metric(url: string, name: string, labels: Record<string, string>): Promise<number> {
  return valueOf(parsePrometheus((await http('GET', `${url}/metrics`)).text), name, labels) ?? 0;
}
const dropped = (reason: string, plugin = 'demo') => metric(c.url, 'outpost_link_messages_dropped_total', { plugin, reason });

interface Got {
  nodeId: string;
  type: string;
  msg: any;
}
function collect(hub: ChannelHub, plugin = 'demo'): Got[] {
  const got: Got[] = [];
  hub.onMessage(plugin, (nodeId, type, msg) => got.push({ nodeId, type, msg }));
  return got;
}

test('messages go both ways to the plugin of the same name, to nodes connected but not yet up', async () => {
  const [a] = agents;
  assert.notEqual(c.registry.get(a.nodeId)?.state, 'up');
  const atController = collect(c.channels);
  const atAgent = collect(a.channels);
  assert.equal(a.channels.send('demo', '', 'hello', { n: 1, s: 'é' }), true);
  assert.equal(c.channels.send('demo', a.nodeId, 'cmd', { x: ['y'] }), true);
  await until('both delivered', () => atController.length === 1 && atAgent.length === 1);
  assert.deepEqual(atController[0], { nodeId: a.nodeId, type: 'hello', msg: { n: 1, s: 'é' } });
  assert.deepEqual(atAgent[0], { nodeId: '', type: 'cmd', msg: { x: ['y'] } });
});

test('broadcast reaches every listed (or every connected) node exactly once, in order', async () => {
  const got = agents.map((a) => collect(a.channels));
  for (let i = 0; i < 50; i++) assert.equal(c.channels.broadcast('demo', 'all', 'tick', { i }), agents.length);
  await until('50 ticks on every agent', () => got.every((g) => g.length === 50));
  const before = await dropped('link_down');
  assert.equal(c.channels.broadcast('demo', [agents[0].nodeId, agents[2].nodeId, agents[0].nodeId, 'no-such-node'], 'only', { to: 'some' }), 2);
  await until('listed nodes got it', () => got[0].length === 51 && got[2].length === 51);
  await sleep(300);
  for (const g of got) assert.deepEqual(g.slice(0, 50).map((m) => m.msg.i), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(got.map((g) => g.length), [51, 50, 51]);
  assert.equal((await dropped('link_down')) - before, 1);
});

test('Buffers anywhere in a message arrive byte for byte, both ways', async () => {
  const [a] = agents;
  const atController = collect(c.channels, 'bin');
  const atAgent = collect(a.channels, 'bin');
  const big = randomBytes(512 * 1024);
  const small = Buffer.from([0, 255, 10, 13, 0x7b]);
  assert.equal(c.channels.broadcast('bin', [a.nodeId], 'push', { keys: ['k'], body: big, parts: [small, { inner: Buffer.alloc(0) }] }), 1);
  assert.equal(a.channels.send('bin', '', 'up', { raw: small, list: [big] }), true);
  await until('binary messages delivered', () => atController.length === 1 && atAgent.length === 1);
  const down = atAgent[0].msg;
  assert.ok(Buffer.isBuffer(down.body) && down.body.equals(big));
  assert.ok(down.parts[0].equals(small));
  assert.equal(down.parts[1].inner.length, 0);
  assert.deepEqual(down.keys, ['k']);
  const up = atController[0].msg;
  assert.equal(atController[0].nodeId, a.nodeId);
  assert.ok(up.raw.equals(small) && up.list[0].equals(big));
});

test('a message for a plugin with no handler is dropped and counted', async () => {
  const before = await dropped('no_handler', 'unknown');
  agents[1].channels.send('ghost', '', 'x', {});
  await until('counted', async () => (await dropped('no_handler', 'unknown')) === before + 1);
});

test('a link that is down drops messages and counts them, on both hosts', async () => {
  const gone = await localAgent(c);
  await until('link open', () => c.channels.isOpen(gone.nodeId));
  gone.link.stop();
  await until('link closed at the controller', () => !c.channels.isOpen(gone.nodeId));
  const before = await dropped('link_down');
  assert.equal(c.channels.send('demo', gone.nodeId, 'x', {}), false);
  assert.equal(c.channels.broadcast('demo', [gone.nodeId], 'x', {}), 0);
  assert.equal((await dropped('link_down')) - before, 2);
  assert.equal(gone.channels.send('demo', '', 'x', {}), false);
  assert.equal(await metric(`http://127.0.0.1:${gone.port}`, 'outpost_agent_link_messages_dropped_total', { plugin: 'demo', reason: 'link_down' }), 1);
  await gone.close();
});

/**
 * What a link delivers after its peer stopped reading while N messages were sent: those that reached
 * the socket before the high-water mark, in order, then exactly the newest RING. Returns how many went first.
 */
function assertDropOldest(got: number[], N: number): number {
  const prefix = got.findIndex((v, k) => v !== k);
  assert.ok(prefix > 0, 'some messages went out before the mark was reached');
  assert.deepEqual(got.slice(prefix), Array.from({ length: RING }, (_, k) => N - RING + k));
  return prefix;
}

async function enroll(name: string): Promise<{ nodeId: string; credential: string }> {
  const r = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: (await c.api('POST', '/api/v1/tokens', { ttl: '10m', uses: 1 })).body.token, name, address: '127.0.0.1' } });
  assert.equal(r.status, 201, r.text);
  return r.body;
}

async function rawNode(name: string) {
  const { nodeId, credential } = await enroll(name);
  const link = await openRawLink(c.url, credential);
  await link.hello(nodeId);
  await until('raw link attached', () => c.channels.isOpen(nodeId));
  return { link, nodeId };
}

test('a node that stops reading: messages wait past the high-water mark, the oldest are dropped, acks overtake them', async () => {
  const { link, nodeId } = await rawNode('slow');
  const frames: Array<{ t: string; i?: number; seq?: number }> = [];
  link.ws.on('message', (m, isBinary) => {
    if (isBinary) return;
    const f = JSON.parse(String(m));
    frames.push(f.t === 'msg' ? { t: 'msg', i: f.msg.i } : { t: f.t, seq: f.seq });
  });
  const socket = (link.ws as unknown as { _socket: import('node:net').Socket })._socket;
  socket.pause();
  const before = await dropped('overflow');
  const N = 3000;
  const pad = 'x'.repeat(8 * 1024);
  for (let i = 0; i < N; i++) assert.equal(c.channels.send('demo', nodeId, 'flood', { i, pad }), true);
  assert.equal(await metric(c.url, 'outpost_link_messages_queued', { node_id: nodeId }), RING);
  // A durable report sent now is acknowledged at once, not behind the waiting messages.
  link.send(sampleReport(1, Date.now()));
  await until('report applied', () => c.registry.lastSeq(nodeId) === 1);
  socket.resume();
  await until('last message and the ack arrived', () => frames.some((f) => f.i === N - 1) && frames.some((f) => f.t === 'ack'), 30_000);

  const prefix = assertDropOldest(frames.filter((f) => f.t === 'msg').map((f) => f.i!), N);
  assert.equal((await dropped('overflow')) - before, N - prefix - RING);
  const ackAt = frames.findIndex((f) => f.t === 'ack');
  const firstQueued = frames.findIndex((f) => f.i === N - RING);
  assert.ok(ackAt < firstQueued, `ack at ${ackAt} must come before the first queued message at ${firstQueued}`);
  assert.equal(await metric(c.url, 'outpost_link_messages_queued', { node_id: nodeId }), 0);

  // A message holding a Buffer reaches the wire as one binary frame in the documented format.
  const binary = new Promise<Buffer>((resolve) => link.ws.on('message', (m, isBinary) => isBinary && resolve(m as Buffer)));
  c.channels.send('demo', nodeId, 'bin', { body: Buffer.from('raw bytes') });
  const decoded = decodeBinaryMessage(await binary);
  assert.equal(decoded.plugin, 'demo');
  assert.equal(String((decoded.msg as { body: Buffer }).body), 'raw bytes');
  link.ws.close();
});

test('malformed or oversized message frames from an agent close its link with a reason', async () => {
  const node = await enroll('bad');
  const cases: Array<[string | Buffer, number, RegExp]> = [
    [Buffer.from([1, 1, 0, 0]), 4400, /binary frame of 4 bytes is shorter than its header/],
    [Buffer.from([7, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), 4400, /binary frame version 7 is not supported/],
    [JSON.stringify({ t: 'msg', plugin: 'p'.repeat(65), type: 't', msg: 1 }), 4400, /msg\.plugin/],
    [JSON.stringify({ t: 'msg', plugin: 'p', type: 't', msg: 'x'.repeat(1024 * 1024) }), 4413, /msg frame is \d+ bytes, limit 1048576/],
    [Buffer.alloc(1024 * 1024 + 1), 4413, /binary frame is 1048577 bytes, limit 1048576/],
  ];
  const before = await metric(c.url, 'outpost_link_violations_total', { type: 'msg', reason: 'malformed_binary' });
  for (const [frame, code, reason] of cases) {
    const link = await openRawLink(c.url, node.credential);
    await link.hello(node.nodeId);
    link.ws.send(frame, { binary: typeof frame !== 'string' });
    const closed = await link.closedWith;
    assert.equal(closed.code, code, `${reason}: ${JSON.stringify(closed)}`);
    assert.match(closed.reason, reason);
  }
  assert.equal((await metric(c.url, 'outpost_link_violations_total', { type: 'msg', reason: 'malformed_binary' })) - before, 2);
});

/** A LinkClient (the agent's link end) against a scripted controller, for what a real controller would not do. */
async function scriptedController(hub: ChannelHub, onHello: (ws: WebSocket) => void) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  wss.once('connection', (ws: WebSocket) =>
    ws.on('message', (m, isBinary) => {
      if (!isBinary && JSON.parse(String(m)).t === 'hello') onHello(ws);
    }),
  );
  const dir = await tempDir('outpost-link-client-');
  const client = new LinkClient({
    controller: `http://127.0.0.1:${(wss.address() as { port: number }).port}`,
    nodeId: 'n1',
    credential: 'x',
    version: 'test',
    labels: {},
    address: '127.0.0.1',
    capabilities: {},
    backoff: { baseDelay: 10, factor: 1, jitter: 0, maxDelay: 10 },
    window: 10,
    outbox: await AgentOutbox.open(join(dir, 'agent'), 100),
    log: quiet,
    plugins: () => [],
    onConfig: async () => {},
    onWelcome: async () => {},
    onCommand: async () => null,
    channels: hub,
  });
  client.start();
  return {
    async close() {
      client.stop();
      wss.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const quiet = createLog('test', 'silent');
// A heartbeat interval longer than the test: the scripted controller answers no pings while it does not read.
const welcome = JSON.stringify({ t: 'welcome', nodeId: 'n1', config: {}, lastSeq: 0, hbInterval: 600_000 });

test('an agent whose controller stops reading: messages wait past the high-water mark, the oldest are dropped', async () => {
  const metrics = new MetricsRegistry();
  const hub = new ChannelHub(metrics.counter('dropped', 'test'), quiet, { highWaterMark: 64 * 1024, queueMessages: RING, queueBytes: 64 * 1024 * 1024 });
  const got: number[] = [];
  let server: WebSocket | undefined;
  const ctl = await scriptedController(hub, (ws) => {
    server = ws;
    ws.on('message', (m) => {
      const f = JSON.parse(String(m));
      if (f.t === 'msg') got.push(f.msg.i);
    });
    ws.send(welcome);
  });
  await until('linked', () => server && hub.isOpen(''));
  const socket = (server as unknown as { _socket: import('node:net').Socket })._socket;
  socket.pause();
  const N = 3000;
  const pad = 'x'.repeat(8 * 1024);
  for (let i = 0; i < N; i++) assert.equal(hub.send('demo', '', 'flood', { i, pad }), true);
  assert.deepEqual(hub.depths(), [['', RING]]);
  socket.resume();
  await until('last message arrived', () => got.includes(N - 1), 30_000);
  const prefix = assertDropOldest(got, N);
  assert.equal(valueOf(parsePrometheus(metrics.render()), 'dropped_total', { plugin: 'demo', reason: 'overflow' }), N - prefix - RING);
  assert.deepEqual(hub.depths(), [['', 0]]);
  await ctl.close();
});

test('the agent closes its link with a reason when the controller sends a malformed binary frame', async () => {
  let closed!: Promise<{ code: number; reason: string }>;
  const ctl = await scriptedController(new ChannelHub(new MetricsRegistry().counter('dropped', 'test'), quiet), (ws) => {
    closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.send(welcome);
    ws.send(Buffer.from([1, 2, 1, 1, 0, 0, 0, 2, 0, 1]), { binary: true });
  });
  await until('controller saw the hello', () => closed);
  assert.deepEqual(await closed, { code: 4400, reason: 'binary frame kind 2 is unknown' });
  await ctl.close();
});
