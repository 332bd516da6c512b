import type { ConnTuple } from '../gateway/change-feed.ts';
import type { PresenceMsg } from '../messages.ts';
import type { ApplyResult, RoutingTable } from './routing.ts';

interface Partial {
  epoch: string;
  seq: number;
  count: number;
  next: number;
  conns: ConnTuple[];
}

export interface IntakeResult extends ApplyResult {
  /** The batch to acknowledge (op 8 of its connections waits for it). */
  ack?: { epoch: string; seq: number };
  /** A whole snapshot was applied: what the node was told before (room counts) must be told again. */
  snapshot: boolean;
}

const NOTHING: IntakeResult = { resync: false, displaced: [], snapshot: false };

/**
 * The controller's side of presence: change batches straight into the routing table, snapshots
 * assembled from their parts first (a part missing or out of order drops the snapshot and asks for
 * another: the table stays as it was until a whole one arrives).
 */
export class PresenceIntake {
  private readonly partial = new Map<string, Partial>();

  constructor(private readonly routing: RoutingTable) {}

  apply(nodeId: string, m: PresenceMsg): IntakeResult {
    if (m.t === 'changes') {
      const r = this.routing.applyBatch(nodeId, m.batch, m.meta);
      return { ...r, ack: { epoch: m.batch.epoch, seq: m.batch.seq }, snapshot: false };
    }
    const { snapshot: s, meta, part } = m;
    if (!part) {
      this.partial.delete(nodeId);
      return { ...this.routing.applySnapshot(nodeId, s, meta), snapshot: true };
    }
    const [index, count] = part;
    let p = this.partial.get(nodeId);
    if (index === 0) this.partial.set(nodeId, (p = { epoch: s.epoch, seq: s.seq, count, next: 0, conns: [] }));
    if (!p || p.epoch !== s.epoch || p.seq !== s.seq || p.count !== count || p.next !== index) {
      // A part was dropped on the way (best effort): this snapshot cannot be completed.
      this.partial.delete(nodeId);
      return { ...NOTHING, resync: true };
    }
    for (const c of s.conns) p.conns.push(c);
    p.next++;
    if (p.next < count) return NOTHING;
    this.partial.delete(nodeId);
    return { ...this.routing.applySnapshot(nodeId, { ...s, conns: p.conns }, meta), snapshot: true };
  }

  forget(nodeId: string): void {
    this.partial.delete(nodeId);
  }
}
