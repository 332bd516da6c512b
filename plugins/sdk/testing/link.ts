/**
 * The link between the harness's agent and controller, in memory: best-effort messages both ways
 * (dropped when the node is disconnected, as the real link drops them) and the wire's copy
 * semantics, so a half never shares an object with the other (JSON for reports and commands,
 * Buffers kept as bytes for messages, as binary frames carry them).
 */
import type { ChannelPort, MessageHandler } from '../../../runtime/context-parts.ts';

/** What crosses the wire: JSON's view of the value, Buffers kept as bytes when `buffers`. */
export function wireCopy<T>(value: T, buffers = false): T {
  if (value === undefined) return value;
  if (!buffers) return JSON.parse(JSON.stringify(value)) as T;
  const copy = (v: unknown): unknown => {
    if (Buffer.isBuffer(v)) return Buffer.from(v);
    if (Array.isArray(v)) return v.map(copy);
    if (v && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = copy(x);
      return out;
    }
    const json = typeof v === 'function' ? undefined : JSON.stringify(v);
    return json === undefined ? undefined : JSON.parse(json);
  };
  return copy(value) as T;
}

export interface CapturedMessage {
  direction: 'toAgent' | 'toController';
  plugin: string;
  type: string;
  nodeId: string;
  msg: unknown;
  /** Dropped because the node was not connected. */
  dropped: boolean;
}

/** Both ends of the in-memory link for one node. */
export class InMemoryLink {
  readonly messages: CapturedMessage[] = [];
  private readonly handlers = { agent: new Map<string, Set<MessageHandler>>(), controller: new Map<string, Set<MessageHandler>>() };
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly nodeId: string,
    private readonly connected: () => boolean,
  ) {}

  /** The agent's ChannelPort (its peer is the controller). */
  readonly agent: ChannelPort = {
    send: (plugin, _nodeId, type, msg) => this.deliver('controller', plugin, type, msg),
    broadcast: () => {
      throw new Error('broadcast is the controller\'s');
    },
    onMessage: (plugin, handler) => this.on('agent', plugin, handler),
  };

  /** The controller's ChannelPort (one node: the harness's). */
  readonly controller: ChannelPort = {
    send: (plugin, nodeId, type, msg) => (nodeId === this.nodeId ? this.deliver('agent', plugin, type, msg) : false),
    broadcast: (plugin, nodeIds, type, msg) => ((nodeIds === 'all' || nodeIds.includes(this.nodeId)) && this.deliver('agent', plugin, type, msg) ? 1 : 0),
    onMessage: (plugin, handler) => this.on('controller', plugin, handler),
  };

  /** Resolves once every message sent so far has reached its handlers. */
  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  private on(side: 'agent' | 'controller', plugin: string, handler: MessageHandler): () => void {
    const set = this.handlers[side].get(plugin) ?? new Set();
    this.handlers[side].set(plugin, set);
    set.add(handler);
    return () => void set.delete(handler);
  }

  private deliver(to: 'agent' | 'controller', plugin: string, type: string, msg: unknown): boolean {
    const dropped = !this.connected();
    this.messages.push({ direction: to === 'agent' ? 'toAgent' : 'toController', plugin, type, nodeId: this.nodeId, msg: wireCopy(msg, true), dropped });
    if (dropped) return false;
    const copy = wireCopy(msg, true);
    // Asynchronous like a socket: the sender goes on before the receiver runs.
    const p = new Promise<void>((resolve) =>
      setImmediate(() => {
        for (const h of this.handlers[to].get(plugin) ?? []) h(to === 'agent' ? '' : this.nodeId, type, copy);
        resolve();
      }),
    );
    this.inFlight.add(p);
    void p.then(() => this.inFlight.delete(p));
    return true;
  }
}
