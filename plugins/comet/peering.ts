import type { Log } from '../sdk/index.ts';
import { CountSharer } from './logic/count-share.ts';
import type { ConnTuple } from './gateway/change-feed.ts';
import { KeyClaims } from './logic/key-claims.ts';
import { routeLocally, type NodeSender } from './logic/local-push.ts';
import { PeerCounts } from './logic/peer-counts.ts';
import type { RoutingTable } from './logic/routing.ts';
import { countShare, keyClaims, pushRequest, type NodeReport, type PushRequest } from './peer-messages.ts';

/** What comet uses of ctx.peers: the other live controllers and this plugin's onPeer handlers there. */
export interface PeerLink {
  list(): Array<{ id: string }>;
  call(controller: string, method: string, body: unknown, opts?: { timeoutMs?: number }): Promise<unknown>;
  broadcast(method: string, body: unknown, opts?: { timeoutMs?: number }): Promise<Array<{ controller: string; ok: true; result: unknown } | { controller: string; ok: false; error: string }>>;
}

export interface PeeringOptions {
  /** This controller's id (which of two connections made in the same millisecond stays). */
  self: string;
  /** Closes the older connections of these keys on one of this controller's nodes (goim's same-key rule). */
  kick(nodeId: string, keys: string[]): void;
  /** How long a push's answer waits for the other controllers, and a count share for its peer. */
  timeoutMs: number;
  /** A peer that has not shared its counts for this long leaves the totals (it died or is cut off). */
  staleMs: number;
  /** A push a controller did not take: its agents' targets missed it. */
  failed(controller: string, error: string): void;
  now?: () => number;
}

/**
 * comet across controllers, without replicated routing state: each controller's tables hold only the
 * agents linked to it. A push accepted here goes to this controller's nodes and, once, to every other
 * live controller, which routes it through its own tables; the HTTP answer waits for them. Counts:
 * every onlineRefreshMs each controller tells each peer how its room totals and node figures changed,
 * and answers the online API from its own tables plus the peers' last shares.
 */
export class CometPeering {
  readonly counts: PeerCounts;
  private readonly sharer = new CountSharer();
  private readonly claims: KeyClaims;
  private readonly now: () => number;

  constructor(
    private readonly peers: PeerLink,
    private readonly routing: RoutingTable,
    private readonly sender: NodeSender,
    private readonly log: Log,
    private readonly opts: PeeringOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.counts = new PeerCounts(this.now);
    this.claims = new KeyClaims(this.now);
  }

  /**
   * A change batch from one of this controller's nodes, before it is applied: keys new to the node are
   * claimed (sent to the peers with the next share), so an older connection of the same key on
   * another controller's node is kicked. Alone, nothing is kept.
   */
  noteChanges(nodeId: string, upserts: readonly ConnTuple[]): void {
    if (upserts.length === 0 || this.peers.list().length === 0) return;
    const added = upserts.filter(([key]) => !this.routing.holds(nodeId, key)).map(([key]) => key);
    if (added.length > 0) this.claims.note(nodeId, added);
  }

  /** Routes a push here and on every other controller; how many nodes took it, once every controller answered (or timed out). */
  async push(p: PushRequest): Promise<number> {
    let nodes = routeLocally(p, this.routing, this.sender);
    // Alone (one controller, or on files) the answer is what it always was, with no call to anyone.
    if (this.peers.list().length === 0) return nodes;
    for (const a of await this.peers.broadcast('push', p, { timeoutMs: this.opts.timeoutMs })) {
      if (a.ok) nodes += (a.result as { nodes?: number } | undefined)?.nodes ?? 0;
      else this.opts.failed(a.controller, a.error);
    }
    return nodes;
  }

  /** This plugin's onPeer: what the other controllers call. */
  readonly handlers = {
    push: (body: unknown): { nodes: number } => ({ nodes: routeLocally(pushRequest.parse(body), this.routing, this.sender) }),
    counts: (body: unknown, from: string): { resync: boolean } => this.counts.apply(from, countShare.parse(body)),
    claims: (body: unknown, from: string): { kicked: number } => {
      const kicks = new Map<string, string[]>();
      for (const [key, at, claimant] of keyClaims.parse(body).keys) {
        const owner = this.routing.ownerOf(key);
        // The claimant's own node still in this table (it just relinked there): the same connection, not an older one.
        if (owner && owner !== claimant && this.claims.olderThan(key, at, from < this.opts.self)) kicks.set(owner, [...(kicks.get(owner) ?? []), key]);
      }
      let kicked = 0;
      for (const [nodeId, keys] of kicks) {
        this.opts.kick(nodeId, keys);
        kicked += keys.length;
      }
      return { kicked };
    },
  };

  /**
   * Every onlineRefreshMs: peers that left (or went quiet) leave the counts, and each live peer is told
   * what changed here since it was last told (an empty share when nothing did: it says this one is alive).
   */
  async share(reports: () => ReadonlyMap<string, NodeReport>): Promise<void> {
    const live = this.peers.list().map((p) => p.id);
    const liveSet = new Set(live);
    for (const id of this.counts.prune(liveSet, this.now() - this.opts.staleMs)) this.log.info({ controller: id }, 'comet: a controller left, its counts are dropped');
    this.sharer.keepOnly(liveSet);
    const claims = this.claims.take();
    if (live.length === 0) return;
    const rooms = this.routing.allRoomCounts();
    const nodes = reports();
    // Best effort: a claim a peer misses leaves both connections up (as goim does across comets).
    const claimed = claims.length > 0 ? this.peers.broadcast('claims', { keys: claims }, { timeoutMs: this.opts.timeoutMs }) : undefined;
    await Promise.all([
      claimed,
      ...live.map(async (id) => {
        try {
          // A peer that asks for everything (it restarted, or missed a share) gets it at once.
          for (let attempt = 0; attempt < 2; attempt++) {
            const s = this.sharer.next(id, rooms, nodes);
            const r = (await this.peers.call(id, 'counts', s, { timeoutMs: this.opts.timeoutMs })) as { resync?: boolean } | undefined;
            if (!r?.resync) return this.sharer.taken(id, s);
            this.sharer.forget(id);
          }
        } catch (err) {
          // Whatever the peer holds of us may be behind now: it gets everything on the next round.
          this.sharer.forget(id);
          this.log.debug({ controller: id, err: (err as Error).message }, 'comet: counts not shared');
        }
      }),
    ]);
  }
}

/** The figures of this controller's nodes as peers see them. */
export function nodeReports(routing: RoutingTable, counters: (nodeId: string) => { delivered: number; dropped: number } | undefined): Map<string, NodeReport> {
  const out = new Map<string, NodeReport>();
  for (const id of routing.nodeIds()) {
    const s = routing.nodeStats(id)!;
    const c = counters(id);
    out.set(id, { conns: s.conns, ips: s.ips, rooms: s.rooms, version: s.version, updatedAt: s.updatedAt, ...(s.meta ? { meta: s.meta } : {}), delivered: c?.delivered ?? 0, dropped: c?.dropped ?? 0 });
  }
  return out;
}
