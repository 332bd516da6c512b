import type { CountShare, NodeReport } from '../peer-messages.ts';

interface Peer {
  epoch: string;
  seq: number;
  rooms: Map<string, number>;
  nodes: Map<string, NodeReport>;
  conns: number;
  ips: number;
  heardAt: number;
}

/**
 * The other controllers' counts as they shared them (CountShare): their room totals and node reports,
 * with the sum of every peer's room totals kept as they change, so a cluster-wide count is this
 * controller's own table plus one lookup here. A peer's share leaves as soon as it stops being a
 * live controller or stops sharing (dead or cut off): its agents relink elsewhere and are counted there.
 */
export class PeerCounts {
  private readonly peers = new Map<string, Peer>();
  private readonly roomTotals = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Applies a peer's share; `resync` when it cannot be (a message missed, a restart on either side): the peer then sends everything. */
  apply(from: string, m: CountShare): { resync: boolean } {
    let p = this.peers.get(from);
    if (m.full) {
      this.drop(from);
      this.peers.set(from, (p = { epoch: m.epoch, seq: 0, rooms: new Map(), nodes: new Map(), conns: 0, ips: 0, heardAt: 0 }));
    } else if (!p || p.epoch !== m.epoch || m.seq !== p.seq + 1) {
      // What we hold of it (if anything) is stale from here: it goes until the full share arrives.
      this.drop(from);
      return { resync: true };
    }
    for (const [room, n] of m.rooms) this.setRoom(p, room, n);
    for (const [id, r] of m.nodes) this.setNode(p, id, r);
    p.seq = m.seq;
    p.heardAt = this.now();
    return { resync: false };
  }

  /** Peers that are no longer live controllers, or have not shared since `staleBefore`, leave the counts. */
  prune(live: ReadonlySet<string>, staleBefore: number): string[] {
    const gone = [...this.peers].filter(([id, p]) => !live.has(id) || p.heardAt < staleBefore).map(([id]) => id);
    for (const id of gone) this.drop(id);
    return gone;
  }

  drop(from: string): void {
    const p = this.peers.get(from);
    if (!p) return;
    for (const room of [...p.rooms.keys()]) this.setRoom(p, room, 0);
    this.peers.delete(from);
  }

  get size(): number {
    return this.peers.size;
  }

  peerIds(): string[] {
    return [...this.peers.keys()];
  }

  /** The sum of every peer's count of the room. */
  roomCount(room: string): number {
    return this.roomTotals.get(room) ?? 0;
  }

  /** Every room some peer counts, with the sum of their counts. */
  rooms(): ReadonlyMap<string, number> {
    return this.roomTotals;
  }

  totals(): { conns: number; ips: number } {
    let conns = 0;
    let ips = 0;
    for (const p of this.peers.values()) {
      conns += p.conns;
      ips += p.ips;
    }
    return { conns, ips };
  }

  /** A node some peer reports; the latest report if two do (a node relinking, until the first one's next share). */
  node(id: string): NodeReport | undefined {
    let best: NodeReport | undefined;
    for (const p of this.peers.values()) {
      const r = p.nodes.get(id);
      if (r && (!best || r.updatedAt > best.updatedAt)) best = r;
    }
    return best;
  }

  private setRoom(p: Peer, room: string, n: number): void {
    const delta = n - (p.rooms.get(room) ?? 0);
    if (n > 0) p.rooms.set(room, n);
    else p.rooms.delete(room);
    if (delta === 0) return;
    const total = (this.roomTotals.get(room) ?? 0) + delta;
    if (total > 0) this.roomTotals.set(room, total);
    else this.roomTotals.delete(room);
  }

  private setNode(p: Peer, id: string, r: NodeReport | null): void {
    const old = p.nodes.get(id);
    if (old) {
      p.conns -= old.conns;
      p.ips -= old.ips;
    }
    if (!r) {
      p.nodes.delete(id);
      return;
    }
    p.nodes.set(id, r);
    p.conns += r.conns;
    p.ips += r.ips;
  }
}
