/**
 * Calls between controllers in one process, over real HTTP on loopback: two controllers' internal
 * endpoints (controller/peers/endpoint.ts) and forwarding (controller/peers/forwarding.ts) with the
 * rest of each controller stood in for (which nodes are linked where, the local command and channel
 * paths, the plugins' onPeer). Forwarded commands answer with the holder's result or error (message
 * and status kept); messages are batched per peer, in order, counted once handed over; peer calls
 * carry Buffers both ways; the endpoint refuses unsigned, forged, stale, replayed and malformed calls.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import HyperExpress from 'hyper-express';
import { createLog } from '../plugins/sdk/log.ts';
import { HttpError } from '../plugins/sdk/http.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import type { ChannelPort } from '../runtime/context-parts.ts';
import { listenHyperExpress } from '../runtime/http-server.ts';
import { PeerClient, PEER_PATH } from '../runtime/cluster/peer-client.ts';
import { encodePeerBody, decodePeerBody } from '../runtime/cluster/peer-codec.ts';
import { signPeerCall } from '../runtime/cluster/peer-sign.ts';
import { mountPeerEndpoint } from '../controller/peers/endpoint.ts';
import { Forwarding } from '../controller/peers/forwarding.ts';
import { until } from './helpers/cluster.ts';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const log = createLog('test', 'silent');

interface Side {
  id: string;
  url: string;
  fwd: Forwarding;
  /** Messages the local channel port took: plugin, nodes, type, msg. */
  sent: Array<{ plugin: string; nodes: string[] | 'all'; type: string; msg: any }>;
  commands: Array<{ node: string; action: string }>;
  calls: MetricsRegistry;
  app: HyperExpress.Server;
}

/** Nodes linked to each controller. */
const linked: Record<string, string[]> = { ctl_a: ['n_a1'], ctl_b: ['n_b1', 'n_b2'] };
const sides = new Map<string, Side>();

async function side(id: string): Promise<Side> {
  const app = new HyperExpress.Server({ max_body_length: Number.MAX_SAFE_INTEGER });
  const metrics = new MetricsRegistry();
  const s = { id, sent: [], commands: [], calls: metrics, app } as unknown as Side;
  const channels: ChannelPort = {
    send: (plugin, node, type, msg) => {
      if (!linked[id].includes(node)) return false;
      s.sent.push({ plugin, nodes: [node], type, msg });
      return true;
    },
    broadcast: (plugin, nodes, type, msg) => {
      s.sent.push({ plugin, nodes, type, msg });
      return nodes === 'all' ? linked[id].length : nodes.filter((n) => linked[id].includes(n)).length;
    },
    onMessage: () => () => undefined,
  };
  s.fwd = new Forwarding({
    self: id,
    linkedHere: (node) => linked[id].includes(node),
    linkedAt: (node) => {
      const c = Object.keys(linked).find((k) => k !== id && linked[k].includes(node));
      return c ? { controller: c } : undefined;
    },
    peers: () => [...sides.values()].filter((x) => x.id !== id).map((x) => ({ id: x.id, url: x.url, links: linked[x.id].length })),
    nodeName: (node) => `name-of-${node}`,
    local: {
      command: async (node, _plugin, action, args: any, timeoutMs) => {
        s.commands.push({ node, action });
        if (!linked[id].includes(node)) throw new Error(`node name-of-${node} is down: its agent is not connected`);
        if (action === 'refuse') throw new Error('the agent says no');
        if (action === 'missing') throw new HttpError(503, 'zz is not enabled on node name-of-' + node);
        if (action === 'slow') await new Promise((r) => setTimeout(r, timeoutMs + 5000));
        return { node, on: id, echo: args };
      },
      channels,
    },
    peerCall: async (plugin, method, body: any, from) => {
      if (method === 'boom') throw new Error('boom here');
      return { plugin, method, from, on: id, bytes: Buffer.concat([body.bytes, Buffer.from([0xff])]) };
    },
    client: new PeerClient(id, SECRET),
    log,
    calls: metrics.counter('outpost_peer_calls_total', 'x'),
  });
  mountPeerEndpoint(app, { secret: SECRET, handle: (op, from) => s.fwd.handle(op, from), log });
  const port = await listenHyperExpress(app, '127.0.0.1', 0);
  s.url = `http://127.0.0.1:${port}`;
  sides.set(id, s);
  return s;
}

const ready = Promise.all([side('ctl_a'), side('ctl_b')]);
after(async () => {
  for (const s of sides.values()) {
    s.fwd.close();
    s.app.close();
  }
});

test('a command for a node linked to another controller is answered by that controller', async () => {
  const [a, b] = await ready;
  assert.deepEqual(await a.fwd.command('n_b1', 'zz', 'echo', { x: 1 }, 2000), { node: 'n_b1', on: 'ctl_b', echo: { x: 1 } });
  assert.deepEqual(b.commands.at(-1), { node: 'n_b1', action: 'echo' });
  // Linked here: the local path, no call.
  assert.deepEqual(await a.fwd.command('n_a1', 'zz', 'echo', {}, 2000), { node: 'n_a1', on: 'ctl_a', echo: {} });
  // Linked nowhere: the local path says why.
  await assert.rejects(a.fwd.command('n_x', 'zz', 'echo', {}, 2000), /node name-of-n_x is down: its agent is not connected/);
  // The holder's errors: the message as is, and the status when it had one.
  await assert.rejects(a.fwd.command('n_b1', 'zz', 'refuse', {}, 2000), (err: Error) => err.message === 'the agent says no' && !(err instanceof HttpError));
  await assert.rejects(a.fwd.command('n_b2', 'zz', 'missing', {}, 2000), (err: Error) => err instanceof HttpError && err.status === 503 && err.message === 'zz is not enabled on node name-of-n_b2');
  // A holder that does not answer within the deadline and its margin: the caller gives up, naming it.
  await assert.rejects(a.fwd.command('n_b1', 'zz', 'slow', {}, 200), /node name-of-n_b1 is linked to controller ctl_b, which could not be reached: no answer within 1200 ms/);
});

test('messages for nodes linked elsewhere are handed to their controller in batches, in order', async () => {
  const [a, b] = await ready;
  const port = a.fwd.channels();
  b.sent.length = 0;
  let took = 0;
  for (let seq = 0; seq < 50; seq++) took += port.broadcast('zz', ['n_a1', 'n_b1', 'n_b2', 'n_gone'], 'ping', { seq, body: Buffer.from([seq]) });
  // n_a1 here (counted by the local port), n_b1 and n_b2 handed to B; n_gone linked nowhere: not taken.
  assert.equal(took, 50 * 3);
  assert.equal(port.send('zz', 'n_b2', 'ping', { seq: 50, body: Buffer.from([50]) }), true);
  assert.equal(port.broadcast('zz', 'all', 'ping', { seq: 51, body: Buffer.from([51]) }), 1 + 2, 'all: the nodes here and those B holds');
  await until('B got every message', () => b.sent.length === 52, 5000, 10);
  assert.deepEqual(b.sent.map((m) => m.msg.seq), Array.from({ length: 52 }, (_, i) => i), 'in order');
  assert.ok(b.sent.every((m) => Buffer.isBuffer(m.msg.body) && m.msg.body[0] === m.msg.seq), 'Buffers arrive as Buffers');
  assert.deepEqual(b.sent[0].nodes, ['n_b1', 'n_b2']);
  assert.equal(b.sent.at(-1)!.nodes, 'all');
  // Fewer calls than messages: batched per peer.
  const calls = await until('A has the answers', () => a.calls.render().match(/outpost_peer_calls_total\{op="send",outcome="ok"\} (\d+)/), 5000, 10);
  assert.ok(calls && Number(calls[1]) < 52, `batched (${calls?.[1]} calls)`);
  // What could never cross is refused at once, as on a single controller.
  assert.throws(() => port.send('zz', 'n_b1', 'ping', { big: Buffer.alloc(2 * 1024 * 1024) }), /at most/);
});

test('peers.call and broadcast reach onPeer on the other controllers, Buffers both ways', async () => {
  const [a] = await ready;
  const peers = a.fwd.peerPort();
  assert.equal(peers.self(), 'ctl_a');
  assert.deepEqual(peers.list(), [{ id: 'ctl_b' }]);
  const r = (await peers.call('ctl_b', 'zz', 'hello', { bytes: Buffer.from('hi') }, 2000)) as any;
  assert.deepEqual({ ...r, bytes: [...r.bytes] }, { plugin: 'zz', method: 'hello', from: 'ctl_a', on: 'ctl_b', bytes: [0x68, 0x69, 0xff] });
  assert.ok(Buffer.isBuffer(r.bytes));
  await assert.rejects(peers.call('ctl_b', 'zz', 'boom', {}, 2000), /controller ctl_b answered boom with an error: boom here/);
  await assert.rejects(peers.call('ctl_z', 'zz', 'hello', {}, 2000), /controller ctl_z is not a live peer of this one/);
  const all = await peers.broadcast('zz', 'boom', {}, 2000);
  assert.deepEqual(all, [{ controller: 'ctl_b', ok: false, error: 'controller ctl_b answered boom with an error: boom here' }]);
});

test('the internal endpoint refuses unsigned, forged, stale, replayed and malformed calls with 401/400 and no detail of the secret', async () => {
  const [, b] = await ready;
  const body = encodePeerBody({ op: 'call', plugin: 'zz', method: 'hello', body: { bytes: Buffer.from('x') } }, 'test');
  const post = (headers: Record<string, string>, data: Buffer = body) => fetch(b.url + PEER_PATH, { method: 'POST', headers, body: data });
  for (const [what, headers, data] of [
    ['unsigned', {}, body],
    ['forged', signPeerCall(Buffer.from('another secret'), 'ctl_a', body), body],
    ['stale', signPeerCall(SECRET, 'ctl_a', body, Date.now() - 60_000), body],
    ['from the future', signPeerCall(SECRET, 'ctl_a', body, Date.now() + 60_000), body],
    ['body changed', signPeerCall(SECRET, 'ctl_a', body), Buffer.concat([body, Buffer.from('!')])],
    ['another sender', { ...signPeerCall(SECRET, 'ctl_a', body), 'x-outpost-peer': 'ctl_evil' }, body],
  ] as const) {
    const r = await post(headers, data);
    assert.equal(r.status, 401, what);
    const text = await r.text();
    assert.deepEqual(JSON.parse(text), { error: { status: 401, message: 'controller-to-controller call refused: missing, stale, replayed or bad signature' } }, what);
    assert.ok(!text.includes(SECRET.toString()) && !text.includes(SECRET.toString('hex')));
  }
  const signed = signPeerCall(SECRET, 'ctl_a', body);
  const ok = await post(signed);
  assert.equal(ok.status, 200);
  const replayed = await post(signed);
  assert.equal(replayed.status, 401, 'the same signed call played again');
  assert.match(await replayed.text(), /replayed or bad signature/);
  assert.equal((decodePeerBody(Buffer.from(await ok.arrayBuffer())) as any).result.from, 'ctl_a');
  const junk = Buffer.from('not a body');
  const bad = await post(signPeerCall(SECRET, 'ctl_a', junk), junk);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as any).error.message, /^malformed call: /);
  const wrongOp = encodePeerBody({ op: 'reboot' }, 'test');
  assert.equal((await post(signPeerCall(SECRET, 'ctl_a', wrongOp), wrongOp)).status, 400);
});
