import type { ChangeBatch, ConnTuple, Snapshot } from '../gateway/change-feed.ts';

/** What an agent says about itself alongside its connections (nodes/weighted and nodes/instances). */
export interface NodeMeta {
  /** Public addresses clients should dial (goim's discovery metadata `addrs`). */
  addrs: string[];
  tcpPort?: number;
  wsPort?: number;
  wssPort?: number;
  weight: number;
  /** The agent's version (nodes/instances). */
  version?: string;
}

interface Entry {
  mid: string;
  room: string;
}

interface NodeState {
  epoch: string;
  seq: number;
  keys: Map<string, Entry>;
  conns: number;
  ips: number;
  /** Bumped when conns change: goim's balancer keeps its per-node choices until the node's data changes. */
  version: number;
  updatedAt: number;
  meta: NodeMeta | undefined;
  /** A batch went missing (or came from a new gateway instance): a snapshot is needed to be exact. */
  needsResync: boolean;
  /** Rooms with at least one of its connections, kept as they change (shared with other controllers every refresh). */
  rooms: number;
}

export interface ApplyResult {
  /** Ask the node for a snapshot: a batch was lost or the node's gateway restarted. */
  resync: boolean;
  /** Keys now held by this node that another node still holds (the older connection there should be kicked). */
  displaced: Array<{ nodeId: string; key: string }>;
}

/**
 * goim's logic state without Redis: key → node, mid → keys, room → nodes with counts, built from
 * the agents' change feeds (batched deltas plus periodic snapshots). A node that goes down is removed
 * at once, so pushes stop going to it and its counts leave the totals.
 */
export class RoutingTable {
  private readonly nodes = new Map<string, NodeState>();
  /** The node holding each key (the latest to announce it, as goim's Redis mapping). */
  private readonly keyOwner = new Map<string, string>();
  private readonly midKeys = new Map<string, Set<string>>();
  private readonly rooms = new Map<string, Map<string, number>>();
  private readonly roomTotals = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  applyBatch(nodeId: string, b: ChangeBatch, meta?: NodeMeta): ApplyResult {
    let n = this.nodes.get(nodeId);
    let resync = false;
    if (!n || n.epoch !== b.epoch) {
      // A gateway we have not seen (or a restarted one): whatever we held for the node is stale.
      this.removeNode(nodeId);
      n = this.addNode(nodeId, b.epoch);
      resync = b.seq !== 1;
    } else if (b.seq <= n.seq) {
      return { resync: false, displaced: [] };
    } else if (b.seq !== n.seq + 1) resync = true;
    // Each change is the key's absolute latest state, so applying a later batch after a gap is still right for its keys.
    const displaced: ApplyResult['displaced'] = [];
    for (const key of b.removes) this.removeKey(nodeId, n, key);
    for (const t of b.upserts) this.upsert(nodeId, n, t, displaced);
    n.seq = b.seq;
    this.setCounts(n, b.conns, b.ips);
    if (meta) n.meta = meta;
    if (resync) n.needsResync = true;
    return { resync: n.needsResync, displaced };
  }

  applySnapshot(nodeId: string, s: Snapshot, meta?: NodeMeta): ApplyResult {
    const old = this.nodes.get(nodeId);
    if (old && old.epoch === s.epoch && s.seq < old.seq) return { resync: false, displaced: [] };
    this.removeNode(nodeId);
    const n = this.addNode(nodeId, s.epoch);
    n.meta = meta ?? old?.meta;
    const displaced: ApplyResult['displaced'] = [];
    for (const t of s.conns) this.upsert(nodeId, n, t, displaced);
    n.seq = s.seq;
    this.setCounts(n, s.conns.length, s.ips);
    return { resync: false, displaced };
  }

  /** A node went down or left: its keys and counts go at once. */
  removeNode(nodeId: string): void {
    const n = this.nodes.get(nodeId);
    if (!n) return;
    this.nodes.delete(nodeId);
    for (const key of [...n.keys.keys()]) this.removeKey(nodeId, n, key);
  }

  needsResync(nodeId: string): boolean {
    return this.nodes.get(nodeId)?.needsResync ?? false;
  }

  // ---- lookups for pushes ----------------------------------------------------------------------

  /** goim's PushKeys: the keys grouped by the node holding them; unknown keys are skipped. */
  nodesForKeys(keys: readonly string[]): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const key of keys) {
      const node = this.keyOwner.get(key);
      if (!node || key === '') continue;
      const list = out.get(node);
      if (list) list.push(key);
      else out.set(node, [key]);
    }
    return out;
  }

  /** goim's PushMids: every key of every mid, once (goim collects them in a map). */
  keysForMids(mids: readonly string[]): string[] {
    const out = new Set<string>();
    for (const mid of mids) for (const key of this.midKeys.get(mid) ?? []) out.add(key);
    return [...out];
  }

  /** Nodes with at least one connection in the room. */
  nodesForRoom(room: string): string[] {
    return [...(this.rooms.get(room)?.keys() ?? [])];
  }

  // ---- counts ---------------------------------------------------------------------------------

  roomCount(room: string): number {
    return this.roomTotals.get(room) ?? 0;
  }

  /** Count of every room over this table's nodes (goim's logic roomCount; ClusterCounts adds the other controllers'). */
  allRoomCounts(): ReadonlyMap<string, number> {
    return this.roomTotals;
  }

  /** This table's totals of the rooms a node holds (its heartbeat replies, once ClusterCounts adds the other controllers'). */
  roomCountsFor(nodeId: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const [room, per] of this.rooms) if (per.has(nodeId)) out.set(room, this.roomTotals.get(room) ?? 0);
    return out;
  }

  totals(): { conns: number; ips: number } {
    let conns = 0;
    let ips = 0;
    for (const n of this.nodes.values()) {
      conns += n.conns;
      ips += n.ips;
    }
    return { conns, ips };
  }

  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  nodeStats(nodeId: string): { conns: number; ips: number; version: number; updatedAt: number; meta: NodeMeta | undefined; rooms: number } | undefined {
    const n = this.nodes.get(nodeId);
    if (!n) return undefined;
    return { conns: n.conns, ips: n.ips, version: n.version, updatedAt: n.updatedAt, meta: n.meta, rooms: n.rooms };
  }

  hasNode(nodeId: string): boolean {
    return this.nodes.has(nodeId);
  }

  /** Whether the node already holds a connection with this key (an upsert of it is a room change, not a new connection). */
  holds(nodeId: string, key: string): boolean {
    return this.nodes.get(nodeId)?.keys.has(key) ?? false;
  }

  /** The node the key's pushes go to. */
  ownerOf(key: string): string | undefined {
    return this.keyOwner.get(key);
  }

  // ---- internals ------------------------------------------------------------------------------

  private addNode(nodeId: string, epoch: string): NodeState {
    const n: NodeState = { epoch, seq: 0, keys: new Map(), conns: 0, ips: 0, version: 0, updatedAt: this.now(), meta: undefined, needsResync: false, rooms: 0 };
    this.nodes.set(nodeId, n);
    return n;
  }

  private setCounts(n: NodeState, conns: number, ips: number): void {
    if (conns !== n.conns) n.version++;
    n.conns = conns;
    n.ips = ips;
    n.updatedAt = this.now();
  }

  private upsert(nodeId: string, n: NodeState, [key, mid, room]: ConnTuple, displaced: ApplyResult['displaced']): void {
    const old = n.keys.get(key);
    if (old) this.forget(nodeId, key, old);
    n.keys.set(key, { mid, room });
    if (room) this.addRoom(room, nodeId, 1);
    const owner = this.keyOwner.get(key);
    if (owner && owner !== nodeId && !old) displaced.push({ nodeId: owner, key });
    this.setOwner(key, nodeId, mid);
  }

  private removeKey(nodeId: string, n: NodeState, key: string): void {
    const e = n.keys.get(key);
    if (!e) return;
    n.keys.delete(key);
    this.forget(nodeId, key, e);
    // Another node may still hold the same key (its older connection): it owns the key again.
    if (this.keyOwner.get(key) === nodeId) {
      for (const [otherId, other] of this.nodes) {
        const oe = other.keys.get(key);
        if (oe) return this.setOwner(key, otherId, oe.mid);
      }
      this.keyOwner.delete(key);
    }
  }

  private forget(nodeId: string, key: string, e: Entry): void {
    if (e.room) this.addRoom(e.room, nodeId, -1);
    if (this.keyOwner.get(key) === nodeId) {
      const set = this.midKeys.get(e.mid);
      if (set?.delete(key) && set.size === 0) this.midKeys.delete(e.mid);
    }
  }

  private setOwner(key: string, nodeId: string, mid: string): void {
    const prev = this.keyOwner.get(key);
    if (prev && prev !== nodeId) {
      const prevMid = this.nodes.get(prev)?.keys.get(key)?.mid;
      if (prevMid !== undefined) {
        const set = this.midKeys.get(prevMid);
        if (set?.delete(key) && set.size === 0) this.midKeys.delete(prevMid);
      }
    }
    this.keyOwner.set(key, nodeId);
    // goim maps only mid > 0 to keys.
    if (mid !== '0' && !mid.startsWith('-')) {
      let set = this.midKeys.get(mid);
      if (!set) this.midKeys.set(mid, (set = new Set()));
      set.add(key);
    }
  }

  private addRoom(room: string, nodeId: string, delta: number): void {
    let per = this.rooms.get(room);
    if (!per) this.rooms.set(room, (per = new Map()));
    const before = per.get(nodeId) ?? 0;
    const c = before + delta;
    if (c > 0) per.set(nodeId, c);
    else per.delete(nodeId);
    if (before > 0 !== c > 0) {
      const n = this.nodes.get(nodeId);
      if (n) n.rooms += c > 0 ? 1 : -1;
    }
    if (per.size === 0) this.rooms.delete(room);
    const total = (this.roomTotals.get(room) ?? 0) + delta;
    if (total > 0) this.roomTotals.set(room, total);
    else this.roomTotals.delete(room);
  }
}
