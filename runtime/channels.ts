/**
 * Best-effort plugin messages over the agent link (issue 10 §4): no disk, no retry. Each open link is a
 * lane: a frame goes straight to the socket while the socket's own buffer is under the high-water
 * mark, otherwise into the lane's bounded ring (oldest evicted first), which the transport drains on
 * the socket's drain signal. Durable reports, commands and replies never enter a lane: the transport
 * writes them directly, so they queue behind at most a high-water mark of messages and are never
 * dropped for them.
 *
 * One hub per host: the controller has a lane per connected node, the agent one lane (node id '')
 * to the controller. The hub decodes nothing and validates nothing; the link hands it decoded
 * messages and the runner checks them against the plugin's spec.
 */
import { z } from 'zod';
import type { Log } from '../plugins/sdk/log.ts';
import type { Counter } from '../plugins/sdk/metrics.ts';
import type { ChannelPort, MessageHandler } from './context-parts.ts';
import { FrameRing } from './frame-ring.ts';
import { encodeMessage, type ChannelMessage, type EncodedFrame } from './link-codec.ts';

/** One open link as the hub sees it. */
export interface ChannelPeer {
  /** Bytes handed to the socket and not yet on the wire (uWS getBufferedAmount, ws bufferedAmount). */
  buffered(): number;
  /** Writes one frame now; false when the transport refused it (the link is going away). */
  write(frame: EncodedFrame): boolean;
}

export const CHANNEL_DEFAULTS = { highWaterMark: 256 * 1024, queueMessages: 4096, queueBytes: 4 * 1024 * 1024 };

/** The `channels` section of both hosts' configs. */
export const ChannelLimits = z
  .object({
    /** Socket buffer, in bytes, above which messages wait in the link's ring. */
    highWaterMark: z.number().int().min(1024).max(8 * 1024 * 1024).default(CHANNEL_DEFAULTS.highWaterMark),
    /** Frames a ring holds at most. */
    queueMessages: z.number().int().min(1).max(1_000_000).default(CHANNEL_DEFAULTS.queueMessages),
    /** Bytes a ring holds at most. */
    queueBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(CHANNEL_DEFAULTS.queueBytes),
  })
  .strict()
  .default(CHANNEL_DEFAULTS);
export type ChannelLimits = z.infer<typeof ChannelLimits>;

export type DropReason = 'link_down' | 'overflow' | 'no_handler';

interface Lane {
  peer: ChannelPeer;
  readonly ring: FrameRing;
}

export class ChannelHub implements ChannelPort {
  private readonly lanes = new Map<string, Lane>();
  private readonly handlers = new Map<string, MessageHandler>();

  constructor(
    /** `{plugin, reason}`: the plugin that sent (or, on receipt, was meant to get) the message. */
    private readonly dropped: Counter,
    private readonly log: Log,
    private readonly limits: ChannelLimits = CHANNEL_DEFAULTS,
  ) {}

  // ---- ChannelPort: what the runner hands plugins

  send(plugin: string, nodeId: string, type: string, msg: unknown): boolean {
    const frame = encodeMessage(plugin, type, msg);
    const lane = this.lanes.get(nodeId);
    if (!lane) return this.drop(frame.plugin, 'link_down');
    return this.offer(lane, frame);
  }

  broadcast(plugin: string, nodeIds: string[] | 'all', type: string, msg: unknown): number {
    const frame = encodeMessage(plugin, type, msg);
    let took = 0;
    if (nodeIds === 'all') {
      for (const lane of this.lanes.values()) if (this.offer(lane, frame)) took++;
      return took;
    }
    for (const id of new Set(nodeIds)) {
      const lane = this.lanes.get(id);
      if (lane ? this.offer(lane, frame) : this.drop(plugin, 'link_down')) took++;
    }
    return took;
  }

  onMessage(plugin: string, handler: MessageHandler): () => void {
    this.handlers.set(plugin, handler);
    return () => {
      if (this.handlers.get(plugin) === handler) this.handlers.delete(plugin);
    };
  }

  // ---- the link's side

  /** A link opened (or replaced the node's previous one, whose waiting frames it takes over). */
  attach(nodeId: string, peer: ChannelPeer): void {
    const lane = this.lanes.get(nodeId);
    if (lane) lane.peer = peer;
    else this.lanes.set(nodeId, { peer, ring: new FrameRing(this.limits.queueMessages, this.limits.queueBytes) });
    this.drained(nodeId);
  }

  /** The link closed; frames still waiting for it are dropped. A peer that was already replaced changes nothing. */
  detach(nodeId: string, peer: ChannelPeer): void {
    const lane = this.lanes.get(nodeId);
    if (lane?.peer !== peer) return;
    this.lanes.delete(nodeId);
    for (const f of lane.ring.clear()) this.drop(f.plugin, 'link_down');
  }

  /** The socket wrote some of its buffer out: move waiting frames to it up to the high-water mark. */
  drained(nodeId: string): void {
    const lane = this.lanes.get(nodeId);
    if (!lane) return;
    while (lane.ring.size > 0 && lane.peer.buffered() < this.limits.highWaterMark) {
      const f = lane.ring.shift()!;
      if (!lane.peer.write(f)) this.drop(f.plugin, 'overflow');
    }
  }

  /** A decoded message arrived from nodeId ('' on the agent: the controller). */
  receive(nodeId: string, m: ChannelMessage): void {
    const handler = this.handlers.get(m.plugin);
    // The name came from the peer: only a plugin running here may become a label value.
    if (!handler) return void this.drop('unknown', 'no_handler');
    try {
      handler(nodeId, m.type, m.msg);
    } catch (err) {
      this.log.error({ plugin: m.plugin, type: m.type, node: nodeId || undefined, err: (err as Error)?.message }, 'plugin message handler failed');
    }
  }

  /** Frames waiting per link, for the queue-depth gauge. */
  depths(): Array<[nodeId: string, frames: number]> {
    return [...this.lanes].map(([id, lane]) => [id, lane.ring.size]);
  }

  isOpen(nodeId: string): boolean {
    return this.lanes.has(nodeId);
  }

  private offer(lane: Lane, frame: EncodedFrame): boolean {
    if (lane.ring.size === 0 && lane.peer.buffered() < this.limits.highWaterMark) return lane.peer.write(frame) || this.drop(frame.plugin, 'overflow');
    for (const old of lane.ring.push(frame)) this.drop(old.plugin, 'overflow');
    return true;
  }

  private drop(plugin: string, reason: DropReason): false {
    this.dropped.inc({ plugin, reason });
    return false;
  }
}
