import type { ChangeBatch, Snapshot } from './gateway/change-feed.ts';
import type { PresenceMsg, StatsMsg } from './messages.ts';
import type { NodeMeta } from './logic/routing.ts';
import { chunkByBytes } from './wire-size.ts';

/** How long a batch waits for the controller's ack before its waiters go on (the change feed waits as long). */
const ACK_WAIT_MS = 2000;
/** A missing ack is logged at most this often. */
const WARN_EVERY_MS = 60_000;

/**
 * The agent's side of presence: change batches to the controller, each resolved when the controller
 * acknowledges it (so op 8 leaves only once the controller routes to the connection), snapshots cut
 * into parts under the link's message bound, and the gateway's counters when they change.
 * `send` is the plugin context's best-effort send: false when the link is down, and then nothing waits.
 */
export class Uplink {
  private readonly waiting = new Map<number, { resolve: () => void; timer: NodeJS.Timeout }>();
  private metaSent = false;
  private lastStats = '';
  private lastWarn = 0;

  constructor(
    private readonly send: (msg: PresenceMsg) => boolean,
    private readonly meta: () => NodeMeta,
    /** Told when the controller took a batch but never acknowledged it (comet not running there?). */
    private readonly warn: (msg: string) => void = () => {},
  ) {}

  /** The gateway's change sink: resolves once the controller has applied the batch (or could not be reached). */
  changes = (batch: ChangeBatch): Promise<void> => {
    // The first batch of a gateway carries where clients reach it; the controller keeps that until the next snapshot.
    const sent = this.send(this.metaSent ? { t: 'changes', batch } : { t: 'changes', batch, meta: this.meta() });
    if (!sent) return Promise.resolve();
    this.metaSent = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle(batch.seq, false);
        if (Date.now() - this.lastWarn < WARN_EVERY_MS) return;
        this.lastWarn = Date.now();
        this.warn(`the controller did not acknowledge connections within ${ACK_WAIT_MS / 1000} s (is comet enabled on the controller?): op 8 went out without it`);
      }, ACK_WAIT_MS).unref();
      this.waiting.set(batch.seq, { resolve, timer });
    });
  };

  /** The controller applied every batch up to seq of this gateway instance. */
  acked(epoch: string, ownEpoch: string, seq: number): void {
    if (epoch === ownEpoch) this.settle(seq, true);
  }

  private settle(seq: number, upTo: boolean): void {
    for (const [s, w] of this.waiting) {
      if (upTo ? s > seq : s !== seq) continue;
      clearTimeout(w.timer);
      this.waiting.delete(s);
      w.resolve();
    }
  }

  /** Every registered connection, in as many messages as the link's bound needs. */
  snapshot(s: Snapshot): void {
    // A snapshot answers a controller that lost its tables (a restart): it lost the counters too, so they go again.
    this.lastStats = '';
    const parts = chunkByBytes(s.conns);
    const meta = this.meta();
    parts.forEach((conns, i) => this.send({ t: 'snapshot', snapshot: { ...s, conns }, meta, ...(parts.length > 1 ? { part: [i, parts.length] as [number, number] } : {}) }));
    this.metaSent = true;
  }

  /** Counters for the controller's metrics; nothing when they did not change since the last call. */
  stats(s: StatsMsg, sendStats: (s: StatsMsg) => boolean): void {
    const key = JSON.stringify(s);
    if (key === this.lastStats) return;
    if (sendStats(s)) this.lastStats = key;
  }

  close(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiting.clear();
  }
}
