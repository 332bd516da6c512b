import { randomUUID } from 'node:crypto';
import type { CountShare, NodeReport } from '../peer-messages.ts';

interface Told {
  seq: number;
  rooms: Map<string, number>;
  /** Per node, what its report said (without updatedAt, which moves with every batch). */
  nodes: Map<string, string>;
}

const signature = (r: NodeReport) => JSON.stringify([r.conns, r.ips, r.rooms, r.version, r.delivered, r.dropped, r.meta]);

/**
 * This controller's side of sharing counts: per peer, what it was told last, so each message carries
 * only what changed (a quiet cluster sends empty shares, which tell the peer this one is alive). A
 * peer is told everything again after a failed call or when it asks (it restarted or missed one).
 */
export class CountSharer {
  /** Tells peers this controller restarted: their sequence for it starts over. */
  private readonly epoch = randomUUID();
  private readonly told = new Map<string, Told>();

  /** The share bringing `peer` up to `rooms`/`nodes`; pass it to `taken` once the peer applied it. */
  next(peer: string, rooms: ReadonlyMap<string, number>, nodes: ReadonlyMap<string, NodeReport>): CountShare {
    const t = this.told.get(peer);
    const share: CountShare = { epoch: this.epoch, seq: (t?.seq ?? 0) + 1, full: !t, rooms: [], nodes: [] };
    for (const [room, n] of rooms) if (t?.rooms.get(room) !== n) share.rooms.push([room, n]);
    if (t) for (const room of t.rooms.keys()) if (!rooms.has(room)) share.rooms.push([room, 0]);
    for (const [id, r] of nodes) if (t?.nodes.get(id) !== signature(r)) share.nodes.push([id, r]);
    if (t) for (const id of t.nodes.keys()) if (!nodes.has(id)) share.nodes.push([id, null]);
    return share;
  }

  /** The peer applied the share: the next one starts from it. */
  taken(peer: string, share: CountShare): void {
    let t = this.told.get(peer);
    if (share.full || !t) this.told.set(peer, (t = { seq: 0, rooms: new Map(), nodes: new Map() }));
    t.seq = share.seq;
    for (const [room, n] of share.rooms) {
      if (n > 0) t.rooms.set(room, n);
      else t.rooms.delete(room);
    }
    for (const [id, r] of share.nodes) {
      if (r) t.nodes.set(id, signature(r));
      else t.nodes.delete(id);
    }
  }

  /** The call failed or the peer asked for everything: the next share to it is full. */
  forget(peer: string): void {
    this.told.delete(peer);
  }

  /** Peers no longer live are forgotten (a returning one gets a full share). */
  keepOnly(live: ReadonlySet<string>): void {
    for (const id of [...this.told.keys()]) if (!live.has(id)) this.told.delete(id);
  }
}
