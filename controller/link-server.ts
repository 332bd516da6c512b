import { randomUUID } from 'node:crypto';
import type HyperExpress from 'hyper-express';
import { AgentMessage, LINK_LIMITS, LINK_MAX_FRAME, LinkClose, closeReason, linkFrameLimit, type ControllerMessage } from '../runtime/link.ts';
import { nodeDownMessage } from '../plugins/sdk/nodes.ts';
import type { Log } from '../plugins/sdk/log.ts';
import { restError } from '../plugins/sdk/http.ts';
import type { Counter } from '../plugins/sdk/metrics.ts';
import type { ReportMeta } from '../plugins/sdk/contract.ts';
import { BoundaryError } from '../runtime/boundary.ts';
import type { ChannelHub, ChannelPeer } from '../runtime/channels.ts';
import { decodeBinaryMessage, LinkCodecError } from '../runtime/link-codec.ts';
import { fastHeartbeat } from '../runtime/link-heartbeat.ts';
import type { Identity } from './identity.ts';
import { parseWireJson } from '../plugins/sdk/json.ts';
import type { Registry } from './registry.ts';

/** What uWS buffers at most for one frame before dropping the connection outright. */
const LINK_HARD_CEILING = 16 * 1024 * 1024;
/** uWS send(): the frame was not queued because the socket's backlog is past max_backpressure. */
const UWS_DROPPED = 2;

interface Conn {
  nodeId: string;
  ws: HyperExpress.Websocket;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  nodeId: string;
}

export interface LinkHooks {
  configFor(nodeId: string): Record<string, unknown>;
  onReport(meta: ReportMeta, plugin: string, type: string, data: unknown): Promise<void>;
}

/** The controller end of the agent link: authentication, heartbeats, in-order deduplicated reports, command RPC. */
export class LinkServer {
  private readonly conns = new Map<string, Conn>();
  private readonly pending = new Map<string, Pending>();
  /**
   * Hellos and reports are handled strictly one after another per node, in seq order, across
   * connections: a reconnect that replaces a connection still applying reports queues behind them,
   * so its welcome carries the true lastSeq and no seq is applied by both.
   */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly hooks: LinkHooks,
    private readonly log: Log,
    private readonly hbIntervalMs: number,
    private readonly counters: { messages: Counter; reports: Counter; reportFailures: Counter; violations: Counter },
    /** Best-effort plugin messages: one lane per open connection, connected-but-not-yet-up nodes included. */
    private readonly channels: ChannelHub,
  ) {}

  mount(app: HyperExpress.Server): void {
    // Synchronous to the end: hyper-express 6.17 / uWS 20.30 drop an upgrade finished after an await now and then
    // (the socket is reset right after its first frame: the agent sees 1006 once, early in the process's life).
    app.upgrade('/api/v1/link', (req, res) => {
      const auth = req.headers['authorization'] ?? '';
      const m = /^Bearer (.+)$/.exec(auth);
      if (!m) {
        res.status(401).json(restError(401, 'agent credential required').json);
        return;
      }
      try {
        const { nodeId, jti } = this.identity.verifyCredential(m[1]);
        const rec = this.registry.record(nodeId);
        if (!rec || rec.jti !== jti) throw new Error('credential revoked or node deleted');
        res.upgrade({ nodeId });
      } catch (err) {
        this.log.warn({ ip: req.ip, reason: (err as Error).message }, 'link rejected');
        res.status(401).json(restError(401, 'agent credential rejected').json);
      }
    });
    // uWS drops a connection whose frame passes max_payload_length without a close frame (the agent sees 1006), so
    // that is only a hard ceiling; the link's own limits sit below it and are checked in onMessage, which can say why.
    // Best-effort messages stop at the channels' high-water mark, far below max_backpressure: what uWS may
    // buffer beyond it is room for reports' acks, commands and config, which must never be dropped for them.
    const wsOptions = { idle_timeout: Math.max(8, Math.ceil((this.hbIntervalMs * 6) / 1000)), max_payload_length: LINK_HARD_CEILING, max_backpressure: LINK_HARD_CEILING, message_type: 'ArrayBuffer' as const };
    app.ws('/api/v1/link', wsOptions, (ws) => {
      const nodeId = (ws.context as { nodeId: string }).nodeId;
      const previous = this.conns.get(nodeId);
      if (previous) previous.ws.close(LinkClose.replaced, 'replaced by a newer connection');
      const peer: ChannelPeer = {
        buffered: () => ws.buffered,
        write: (frame) => (ws.send(frame.data, frame.binary) as unknown as number) !== UWS_DROPPED,
      };
      const conn: Conn = { nodeId, ws };
      this.conns.set(nodeId, conn);
      this.channels.attach(nodeId, peer);
      ws.on('message', (msg: ArrayBuffer, isBinary: boolean) => this.onMessage(conn, msg, isBinary));
      ws.on('drain', () => {
        if (this.conns.get(nodeId) === conn) this.channels.drained(nodeId);
      });
      ws.on('close', () => {
        this.channels.detach(nodeId, peer);
        if (this.conns.get(nodeId) === conn) {
          this.conns.delete(nodeId);
          this.registry.disconnected(nodeId);
        }
      });
    });
  }

  isConnected(nodeId: string): boolean {
    return this.conns.has(nodeId);
  }

  /** Ids of the nodes whose link this controller holds (its presence). */
  linkedNodes(): string[] {
    return [...this.conns.keys()];
  }

  connectedCount(): number {
    return this.conns.size;
  }

  send(nodeId: string, msg: ControllerMessage): boolean {
    const c = this.conns.get(nodeId);
    if (!c) return false;
    return this.write(c, JSON.stringify(msg));
  }

  broadcast(msg: ControllerMessage): void {
    const text = JSON.stringify(msg);
    for (const c of this.conns.values()) this.write(c, text);
  }

  /**
   * A control frame straight to the socket, ahead of any waiting best-effort message. uWS refuses it only
   * when the agent has left max_backpressure unread: that link cannot keep its promises any more, so it is
   * closed and the agent reconnects (its reports replay; the command fails at its deadline).
   */
  private write(c: Conn, text: string): boolean {
    if ((c.ws.send(text) as unknown as number) !== UWS_DROPPED) return true;
    this.log.warn({ node: c.nodeId, buffered: c.ws.buffered }, 'agent is not reading its link; closing it');
    c.ws.close(LinkClose.backlog, closeReason(`agent left over ${LINK_HARD_CEILING} bytes unread`));
    return false;
  }

  /** Closes a node's link for good, e.g. when it is deleted. */
  kick(nodeId: string, reason: string): void {
    this.conns.get(nodeId)?.ws.close(LinkClose.revoked, reason);
  }

  command(nodeId: string, plugin: string, action: string, args: unknown, timeoutMs: number): Promise<unknown> {
    const node = this.registry.get(nodeId);
    if (!node) return Promise.reject(new Error(`node ${nodeId} is not enrolled`));
    // Only an absent link refuses: a node linked but not yet "up" (or missing beats) still gets the
    // command, and a frozen one answers with the deadline error instead.
    if (!this.conns.has(nodeId)) return Promise.reject(new Error(nodeDownMessage(node.name)));
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`node ${node.name} did not answer ${plugin}.${action} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, nodeId });
      this.send(nodeId, { t: 'command', id, plugin, action, args, deadline: Date.now() + timeoutMs });
    });
  }

  closeAll(): void {
    for (const c of this.conns.values()) c.ws.close(1001, 'controller stopping');
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('controller stopping'));
      this.pending.delete(id);
    }
  }

  private onMessage(conn: Conn, raw: ArrayBuffer, isBinary: boolean): void {
    if (isBinary) return this.onBinary(conn, raw);
    if (raw.byteLength > LINK_MAX_FRAME) {
      this.refuse(conn, 'unknown', 'too_large', LinkClose.tooLarge, `frame is ${raw.byteLength} bytes, limit ${LINK_MAX_FRAME}`);
      return;
    }
    const text = Buffer.from(raw).toString();
    let parsed: unknown;
    try {
      parsed = parseWireJson(text);
    } catch {
      this.refuse(conn, 'unknown', 'malformed_json', LinkClose.protocol, 'malformed JSON');
      return;
    }
    const msg = this.checked(conn, raw, parsed);
    if (!msg) return;
    this.counters.messages.inc({ type: msg.t });
    switch (msg.t) {
      case 'hello':
        this.serial(conn, async () => {
          if (msg.nodeId !== conn.nodeId) {
            this.refuse(conn, 'hello', 'wrong_node', LinkClose.protocol, 'hello nodeId does not match credential');
            return;
          }
          try {
            await this.registry.hello(conn.nodeId, msg);
          } catch (err) {
            // Without a welcome the agent would wait on an open link for ever: it reconnects instead.
            this.log.warn({ node: conn.nodeId, err: (err as Error)?.message }, 'could not record hello; closing the link so the agent retries');
            conn.ws.close(LinkClose.tryAgain, closeReason('hello not recorded: try again'));
            return;
          }
          this.send(conn.nodeId, { t: 'welcome', nodeId: conn.nodeId, config: this.hooks.configFor(conn.nodeId), lastSeq: this.registry.lastSeq(conn.nodeId), hbInterval: this.hbIntervalMs });
        });
        break;
      case 'hb':
        this.registry.heartbeat(conn.nodeId, msg.summary);
        break;
      case 'report':
        this.serial(conn, () => this.applyReport(conn, msg));
        break;
      case 'msg':
        this.channels.receive(conn.nodeId, msg);
        break;
      case 'reply': {
        const p = this.pending.get(msg.id);
        if (!p || p.nodeId !== conn.nodeId) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.data);
        else p.reject(new Error(msg.error ?? 'command failed'));
        break;
      }
    }
  }

  /** The message if the schema accepts it and it is within its type's size limit; otherwise the link is refused. */
  private checked(conn: Conn, raw: ArrayBuffer, parsed: unknown): AgentMessage | undefined {
    // Heartbeats, nearly every message, skip the schema's parse when the hand check takes them;
    // anything else (an oversized one too) goes the schema's way, which names the problem.
    const hb = raw.byteLength <= linkFrameLimit('hb') ? fastHeartbeat(parsed) : undefined;
    if (hb) return hb;
    const r = AgentMessage.safeParse(parsed);
    if (!r.success) {
      const type = messageType(parsed);
      const issue = r.error.issues[0];
      // Path segments can be attacker-chosen label keys: cut them before they reach the log.
      const where = [type, ...(issue?.path ?? [])].map((k) => String(k).slice(0, 64)).join('.');
      this.refuse(conn, type, 'invalid', LinkClose.protocol, `${where}: ${issue?.message ?? 'malformed link message'}`);
      return undefined;
    }
    const limit = linkFrameLimit(r.data.t);
    if (raw.byteLength > limit) {
      this.refuse(conn, r.data.t, 'too_large', LinkClose.tooLarge, `${r.data.t} frame is ${raw.byteLength} bytes, limit ${limit}`);
      return undefined;
    }
    return r.data;
  }

  /** A binary frame: a plugin message holding Buffers (runtime/link-codec.ts). */
  private onBinary(conn: Conn, raw: ArrayBuffer): void {
    if (raw.byteLength > LINK_LIMITS.messageBytes) {
      this.refuse(conn, 'msg', 'too_large', LinkClose.tooLarge, `binary frame is ${raw.byteLength} bytes, limit ${LINK_LIMITS.messageBytes}`);
      return;
    }
    let m;
    try {
      // A copy: uWS frees raw when this handler returns, and the plugin may keep the buffers.
      m = decodeBinaryMessage(Buffer.copyBytesFrom(new Uint8Array(raw)));
    } catch (err) {
      if (!(err instanceof LinkCodecError)) throw err;
      this.refuse(conn, 'msg', 'malformed_binary', LinkClose.protocol, err.message);
      return;
    }
    this.counters.messages.inc({ type: 'msg' });
    this.channels.receive(conn.nodeId, m);
  }

  /** Closes a connection that broke the protocol, saying why in the close frame, the log and a metric. */
  private refuse(conn: Conn, type: string, kind: string, code: number, reason: string): void {
    this.counters.violations.inc({ type, reason: kind });
    this.log.warn({ node: conn.nodeId, type, reason }, 'link protocol violation; closing the connection');
    conn.ws.close(code, closeReason(reason));
  }

  /** Queues step behind the node's earlier ones; a failing step is logged and does not stall the rest. */
  private serial(conn: Conn, step: () => Promise<void>): void {
    const next = (this.chains.get(conn.nodeId) ?? Promise.resolve()).then(step).catch((err) => {
      this.log.error({ node: conn.nodeId, err: (err as Error)?.message }, 'link message handling failed');
    });
    this.chains.set(conn.nodeId, next);
    void next.then(() => {
      if (this.chains.get(conn.nodeId) === next) this.chains.delete(conn.nodeId);
    });
  }

  private async applyReport(conn: Conn, msg: Extract<AgentMessage, { t: 'report' }>): Promise<void> {
    if (!this.registry.record(conn.nodeId)) return;
    let refused: string | undefined;
    if (msg.seq > this.registry.lastSeq(conn.nodeId)) {
      try {
        await this.hooks.onReport({ nodeId: conn.nodeId, seq: msg.seq, ts: msg.ts }, msg.plugin, msg.type, msg.data);
        this.counters.reports.inc({ plugin: msg.plugin });
      } catch (err) {
        // Refused at the boundary (counted there): the agent hears why with the ack and logs it.
        if (err instanceof BoundaryError) refused = err.message;
        // Acknowledged anyway: a report that cannot be applied would otherwise be replayed forever.
        this.counters.reportFailures.inc({ plugin: msg.plugin });
        this.log.error({ node: conn.nodeId, plugin: msg.plugin, type: msg.type, err: (err as Error).message }, 'report handler failed');
      }
      await this.registry.setSeq(conn.nodeId, msg.seq);
    }
    if (!conn.ws.closed) this.send(conn.nodeId, { t: 'ack', seq: msg.seq, ...(refused ? { error: refused } : {}) });
  }
}

const TYPES = new Set(['hello', 'hb', 'report', 'reply', 'msg']);

/** The message type as a bounded metric label: anything unknown is "unknown". */
function messageType(v: unknown): string {
  const t = v && typeof v === 'object' ? (v as { t?: unknown }).t : undefined;
  return typeof t === 'string' && TYPES.has(t) ? t : 'unknown';
}
