import type { Log } from '../sdk/index.ts';
import { CountSharer } from './logic/count-share.ts';
import { routeLocally, type NodeSender } from './logic/local-push.ts';
import { PeerCounts } from './logic/peer-counts.ts';
import type { RoutingTable } from './logic/routing.ts';
import { countShare, pushRequest, type NodeReport, type PushRequest } from './peer-messages.ts';

/** What comet uses of ctx.peers: the other live controllers and this plugin's onPeer handlers there. */
export interface PeerLink {
  list(): Array<{ id: string }>;
  call(controller: string, method: string, body: unknown, opts?: { timeoutMs?: number }): Promise<unknown>;
  broadcast(method: string, body: unknown, opts?: { timeoutMs?: number }): Promise<Array<{ controller: string; ok: true; result: unknown } | { controller: string; ok: false; error: string }>>;
}

export interface PeeringOptions {
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
  };

  /**
   * Every onlineRefreshMs: peers that left (or went quiet) leave the counts, and each live peer is told
   * what changed here since it was last told (an empty share when nothing did: it says this one is alive).
   */
  async share(nodes: ReadonlyMap<string, NodeReport>): Promise<void> {
    const live = this.peers.list().map((p) => p.id);
    const liveSet = new Set(live);
    for (const id of this.counts.prune(liveSet, this.now() - this.opts.staleMs)) this.log.info({ controller: id }, 'comet: a controller left, its counts are dropped');
    this.sharer.keepOnly(liveSet);
    if (live.length === 0) return;
    const rooms = this.routing.allRoomCounts();
    await Promise.all(
      live.map(async (id) => {
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
    );
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
