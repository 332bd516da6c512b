/**
 * Best-effort plugin messages as JSON `msg` frames on the existing link ({t:'msg', plugin, type, msg}).
 * Nothing is queued: a frame the link cannot take now is dropped and counted. Buffers travel as
 * JSON's {type:'Buffer', data:[...]} and are revived on receipt; binary frames are the link's next
 * step (they replace this file behind the same ChannelPort).
 */
import type { Counter } from '../plugins/sdk/metrics.ts';
import type { ChannelPort, MessageHandler } from './context-parts.ts';

export interface MessageFrame {
  t: 'msg';
  plugin: string;
  type: string;
  msg: unknown;
}

/** The link end a hub writes to: one peer (agent) or many (controller). */
export interface FrameTransport {
  /** false when the link to nodeId is not open (or did not take the frame). */
  send(nodeId: string, frame: string): boolean;
  /** Node ids with an open link (the controller's broadcast 'all'); the agent has only ''. */
  connected(): string[];
}

function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.type === 'Buffer' && Array.isArray(o.data) && Object.keys(o).length === 2) return Buffer.from(o.data as number[]);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, revive(x)]));
  }
  return v;
}

export class JsonChannelHub implements ChannelPort {
  private readonly handlers = new Map<string, MessageHandler>();

  constructor(
    private readonly transport: FrameTransport,
    /** Messages not delivered, by plugin and reason (link down, no handler). */
    private readonly dropped: Counter,
  ) {}

  send(plugin: string, nodeId: string, type: string, msg: unknown): boolean {
    const ok = this.transport.send(nodeId, encode(plugin, type, msg));
    if (!ok) this.dropped.inc({ plugin, reason: 'link' });
    return ok;
  }

  broadcast(plugin: string, nodeIds: string[] | 'all', type: string, msg: unknown): number {
    const frame = encode(plugin, type, msg);
    let sent = 0;
    for (const id of nodeIds === 'all' ? this.transport.connected() : nodeIds) {
      if (this.transport.send(id, frame)) sent++;
      else this.dropped.inc({ plugin, reason: 'link' });
    }
    return sent;
  }

  onMessage(plugin: string, handler: MessageHandler): () => void {
    this.handlers.set(plugin, handler);
    return () => {
      if (this.handlers.get(plugin) === handler) this.handlers.delete(plugin);
    };
  }

  /** A msg frame arrived from nodeId (the link has parsed its envelope). */
  receive(nodeId: string, frame: Omit<MessageFrame, 't'>): void {
    const handler = this.handlers.get(frame.plugin);
    if (!handler) {
      // The plugin name came from the peer: not a label value, or junk names would mint series.
      this.dropped.inc({ plugin: 'unrouted', reason: 'no-handler' });
      return;
    }
    handler(nodeId, frame.type, revive(frame.msg));
  }
}

function encode(plugin: string, type: string, msg: unknown): string {
  return JSON.stringify({ t: 'msg', plugin, type, msg } satisfies MessageFrame);
}
