/**
 * Shared by the comet tests: a gateway with its real listeners on 127.0.0.1 port 0, and clients
 * that behave like goim's own: examples/javascript/client.js (WebSocket) and benchmarks/client (TCP).
 */
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { pino } from 'pino';
import { createLog, type Log } from '../plugins/sdk/log.ts';
import { cometConfig, gatewayOptions, type CometConfig } from '../plugins/comet/config.ts';
import { Gateway, type GatewayHooks } from '../plugins/comet/gateway/gateway.ts';
import { createTokenCheck } from '../plugins/comet/gateway/jwt.ts';
import { listenTcp } from '../plugins/comet/listeners/tcp.ts';
import { listenWebSocket } from '../plugins/comet/listeners/ws.ts';
import type { Listening } from '../plugins/comet/listeners/listening.ts';
import { encodeFrame, HEADER_LEN } from '../plugins/comet/protocol/frame.ts';
import { FrameStream } from '../plugins/comet/protocol/stream-decoder.ts';
import { RoutingTable, type NodeMeta } from '../plugins/comet/logic/routing.ts';
import { ClusterCounts } from '../plugins/comet/logic/cluster-counts.ts';
import { PeerCounts } from '../plugins/comet/logic/peer-counts.ts';
import { routeLocally, type NodeSender } from '../plugins/comet/logic/local-push.ts';
import { Balancer } from '../plugins/comet/logic/balancer.ts';
import { applyPush, type PushMsg } from '../plugins/comet/messages.ts';
import { goimRoutes } from '../plugins/comet/api/routes.ts';
import type { CometNode, GoimContext, Pusher } from '../plugins/comet/api/context.ts';
import type { GoimResult } from '../plugins/comet/api/envelope.ts';

export const quietLog = createLog('comet-test', 'silent');

export interface TestGateway {
  gateway: Gateway;
  ws: Listening;
  tcp: Listening;
  wsUrl: string;
  close(): Promise<void>;
}

export async function startGateway(config: Record<string, unknown> = {}, hooks: GatewayHooks = {}, log: Log = quietLog): Promise<TestGateway> {
  const cfg: CometConfig = cometConfig.parse(config);
  const check = cfg.auth.jwt ? await createTokenCheck(cfg.auth.jwt) : undefined;
  const gateway = new Gateway(gatewayOptions(cfg, check), log, hooks);
  const ws = await listenWebSocket({ host: '127.0.0.1', port: 0 }, gateway);
  const tcp = await listenTcp({ host: '127.0.0.1', port: 0 }, gateway);
  return {
    gateway,
    ws,
    tcp,
    wsUrl: `ws://127.0.0.1:${ws.port}/sub`,
    async close() {
      gateway.close();
      await ws.close();
      await tcp.close();
    },
  };
}

export interface Got {
  ver: number;
  op: number;
  seq: number;
  body: Buffer;
  packLen: number;
}

/** Splits bytes into frames by packLen (what client.js does inside an op-9 message). */
export function splitFrames(buf: Buffer): Got[] {
  const out: Got[] = [];
  for (let off = 0; off + HEADER_LEN <= buf.length; ) {
    const packLen = buf.readInt32BE(off);
    out.push({ packLen, ver: buf.readInt16BE(off + 6), op: buf.readInt32BE(off + 8), seq: buf.readInt32BE(off + 12), body: buf.subarray(off + HEADER_LEN, off + packLen) });
    off += packLen;
  }
  return out;
}

export const JS_CLIENT_AUTH = '{"mid":123, "room_id":"live://1000", "platform":"web", "accepts":[1000,1001,1002]}';

/** Waits for a condition the client's event handlers make true; fails with what was seen. */
async function waitUntil(what: string, cond: () => boolean, timeoutMs: number, seen: () => unknown): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}; seen: ${JSON.stringify(seen())}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A client speaking like goim's examples/javascript/client.js: on open it sends op 7 (ver 1, seq 1)
 * with the auth body; on op 8 a heartbeat (ver 1, op 2, seq 1, empty body); an op-9 message is
 * parsed as the inner frames after its 16-byte header.
 */
export class WsClient {
  readonly messages: Got[] = [];
  /** Every WebSocket message, its top frame. */
  readonly frames: Got[] = [];
  readonly raw: Buffer[] = [];
  closed = false;
  closeCode = 0;
  authed = false;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) throw new Error('server sent a text message');
      this.raw.push(data);
      const top = splitFrames(data)[0];
      this.frames.push(top);
      if (top.op === 8) {
        this.authed = true;
        if (this.autoHeartbeat) this.heartbeat();
      } else if (top.op === 9) this.messages.push(...splitFrames(data.subarray(HEADER_LEN)));
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
    });
    ws.on('error', () => {});
  }

  autoHeartbeat = true;

  static async open(url: string, auth: string | null = JS_CLIENT_AUTH, opts: { autoHeartbeat?: boolean } = {}): Promise<WsClient> {
    const ws = new WebSocket(url);
    const c = new WsClient(ws);
    c.autoHeartbeat = opts.autoHeartbeat ?? true;
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    if (auth !== null) c.send(1, 7, 1, Buffer.from(auth));
    return c;
  }

  /** Connects and waits for op 8. */
  static async authed(url: string, auth: string | object = JS_CLIENT_AUTH, opts: { autoHeartbeat?: boolean } = {}): Promise<WsClient> {
    const c = await WsClient.open(url, typeof auth === 'string' ? auth : JSON.stringify(auth), opts);
    await c.until('op 8', () => c.authed);
    return c;
  }

  send(ver: number, op: number, seq: number, body: Uint8Array = Buffer.alloc(0)): void {
    this.ws.send(encodeFrame(ver, op, seq, body));
  }

  sendRaw(bytes: Buffer | string): void {
    this.ws.send(bytes);
  }

  heartbeat(): void {
    this.send(1, 2, 1);
  }

  until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
    return waitUntil(what, cond, timeoutMs, () => ({ frames: this.frames.map((f) => f.op), messages: this.messages.map((m) => m.body.toString()), closed: this.closed }));
  }

  untilClosed(timeoutMs = 5000): Promise<void> {
    return this.until('close', () => this.closed, timeoutMs);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** goim's benchmarks/client: TCP, op 7 then heartbeats with ver 0; every non-3/8 frame is a message. */
export class TcpClient {
  readonly frames: Got[] = [];
  closed = false;
  private readonly stream = new FrameStream();

  private constructor(readonly sock: Socket) {
    sock.on('data', (chunk: Buffer) => {
      this.stream.push(chunk, (f) => {
        this.frames.push({ ver: f.ver, op: f.op, seq: f.seq, body: Buffer.from(f.body), packLen: HEADER_LEN + f.body.length });
        return true;
      });
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => {});
  }

  get messages(): Got[] {
    return this.frames.filter((f) => f.op !== 3 && f.op !== 8);
  }

  static async open(port: number, localAddress?: string): Promise<TcpClient> {
    const sock = connect({ port, host: '127.0.0.1', localAddress });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    return new TcpClient(sock);
  }

  /** Auth as the benchmark client does: `{"mid":N,"key":"","room_id":"test://1","platform":"ios","accepts":[1000,1001,1002]}`. */
  static async authed(port: number, body: string | object = { mid: 1, key: '', room_id: 'test://1', platform: 'ios', accepts: [1000, 1001, 1002] }, localAddress?: string): Promise<TcpClient> {
    const c = await TcpClient.open(port, localAddress);
    c.send(1, 7, 1, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
    await c.until('op 8', () => c.frames.some((f) => f.op === 8));
    return c;
  }

  send(ver: number, op: number, seq: number, body: Uint8Array = Buffer.alloc(0)): void {
    this.sock.write(encodeFrame(ver, op, seq, body));
  }

  heartbeat(): void {
    this.send(0, 2, 0);
  }

  until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
    return waitUntil(what, cond, timeoutMs, () => ({ frames: this.frames.map((f) => f.op), closed: this.closed }));
  }

  untilClosed(timeoutMs = 5000): Promise<void> {
    return this.until('close', () => this.closed, timeoutMs);
  }

  close(): void {
    this.sock.destroy();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `fn` stops throwing (an assertion about state other sockets change), then returns its value. */
export async function eventually<T>(fn: () => T, timeoutMs = 5000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if (Date.now() - t0 > timeoutMs) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A pino logger writing into an array, to check what the gateway logs. */
export function memoryLog(): { log: Log; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

/**
 * Two (or more) agents in one process: each a gateway with real listeners on its own ports; the
 * "controller" is the routing table fed by their change feeds and goim's handlers, and the "link"
 * is an in-memory Pusher that delivers each push to the node's gateway on a later turn, as the
 * best-effort channel would. Killing a node drops it from the tables at once, as the controller
 * does when the watchdog calls it down.
 */
export class CometCluster {
  readonly routing = new RoutingTable();
  readonly balancer = new Balancer();
  readonly agents = new Map<string, { g: TestGateway; node: CometNode; live: boolean }>();
  readonly sent: Array<{ nodeId: string; msg: PushMsg }> = [];
  readonly displaced: Array<{ nodeId: string; key: string }> = [];
  readonly ctx: GoimContext;

  private constructor(readonly config: CometConfig) {
    const live = () => [...this.agents.values()].filter((a) => a.live).map((a) => a.node);
    const sender: NodeSender = {
      localNodes: () => live().map((n) => n.id),
      sendToNode: (nodeId, msg) => {
        this.sent.push({ nodeId, msg });
        const a = this.agents.get(nodeId);
        if (a?.live) setImmediate(() => applyPush(a.g.gateway, msg));
      },
      broadcast: (nodeIds, msg) => {
        for (const id of nodeIds) sender.sendToNode(id, msg);
      },
    };
    const pusher: Pusher = { nodes: live, push: async (p) => routeLocally(p, this.routing, sender) };
    this.ctx = { config, counts: new ClusterCounts(this.routing, new PeerCounts()), balancer: this.balancer, pusher };
  }

  static async start(names: string[], config: Record<string, unknown> = {}): Promise<CometCluster> {
    const cfg = cometConfig.parse({ feedIntervalMs: 20, ...config });
    const c = new CometCluster(cfg);
    for (const [i, name] of names.entries()) {
      const id = `node-${name}`;
      const meta: NodeMeta = { addrs: [`10.0.0.${i + 1}`], weight: cfg.nodes.weight };
      const g = await startGateway({ feedIntervalMs: 20, ...config }, {
        onChanges: (batch) => {
          if (!c.agents.get(id)?.live) return;
          const r = c.routing.applyBatch(id, batch, meta);
          c.displaced.push(...r.displaced);
        },
      });
      c.agents.set(id, { g, node: { id, name, labels: { region: 'sh', zone: `sh00${i + 1}` }, address: `10.0.0.${i + 1}`, version: '0.1.0' }, live: true });
      // An agent announces itself with a snapshot when comet starts (and periodically after).
      c.routing.applySnapshot(id, g.gateway.snapshot(), meta);
    }
    return c;
  }

  gateway(name: string): TestGateway {
    return this.agents.get(`node-${name}`)!.g;
  }

  /** One HTTP call to goim's API, through the route table the controller mounts: what the client gets. */
  async call(method: 'GET' | 'POST', pathAndQuery: string, body: Buffer | string = Buffer.alloc(0)): Promise<GoimResult> {
    const url = new URL(pathAndQuery, 'http://controller');
    const route = goimRoutes.find((r) => r.method === method && r.path === url.pathname);
    if (!route) throw new Error(`no route ${method} ${url.pathname}`);
    const queryAll: Record<string, string[]> = {};
    for (const [k, v] of url.searchParams) (queryAll[k] ??= []).push(v);
    const r = await route.handler({ queryAll, raw: Buffer.isBuffer(body) ? body : Buffer.from(body) }, this.ctx);
    return { status: r.status, json: r.json };
  }

  /** What the controller sends every onlineRefreshMs: each node's rooms with their cluster-wide counts. */
  refreshRoomCounts(): void {
    for (const [id, a] of this.agents) if (a.live) a.g.gateway.setRoomCounts(this.routing.roomCountsFor(id));
  }

  /** The node dies: connections gone, and the controller drops it from the tables. */
  async kill(name: string): Promise<void> {
    const a = this.agents.get(`node-${name}`)!;
    a.live = false;
    this.routing.removeNode(a.node.id);
    await a.g.close();
  }

  async close(): Promise<void> {
    for (const a of this.agents.values()) if (a.live) await a.g.close();
  }
}

/**
 * A throwaway self-signed certificate for 127.0.0.1 (P-256, valid until 2126), only for the WSS test:
 * embedded so `npm test` needs no openssl. Never used outside tests.
 */
export const TEST_TLS = {
  cert: `-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUKHKejys+vKEem+RBfQ5+cnpWaaIwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMjAyMjY0NloYDzIxMjYxMTA4
MDIyNjQ2WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASfMcudE3Dyl8zNqI0Bb0Twxc0+CIhPbUKX6f7nqkq8NLaqa/0r4x4H
EJje7sSR1tC7ks1BQiILhE2SfIYMIFLro2QwYjAdBgNVHQ4EFgQUz+yNgc0D9+q2
L4+zCmepZs/r6ZowHwYDVR0jBBgwFoAUz+yNgc0D9+q2L4+zCmepZs/r6ZowDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IQCi9BJ5VlUE1N8W2NFwLgY0bOhEhc0dJ6kYXAsVCzyRKwIgNli17A6AzE+Uxbue
uo5/A+NtBZX+GqTSLhNG7qIBeX8=
-----END CERTIFICATE-----
`,
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcrkA8UhqgR43EckB
wMdX0qTnqNZdxg6QFmjR19W62MihRANCAASfMcudE3Dyl8zNqI0Bb0Twxc0+CIhP
bUKX6f7nqkq8NLaqa/0r4x4HEJje7sSR1tC7ks1BQiILhE2SfIYMIFLr
-----END PRIVATE KEY-----
`,
};
