import { createHash } from 'node:crypto';
import type { ControllerContext } from '../sdk/index.ts';
import type { CheckSpec, Group } from './schema.ts';
import type { Spec } from './spec.ts';
import { pickNodes } from './quorum.ts';

export interface ProbeNode {
  id: string;
  name: string;
  address: string;
  kind: 'agent' | 'external';
  live: boolean;
  /** An agent linked to this controller (which pushes its assignment); false for one linked to another, and for external probers. */
  here: boolean;
}

export interface AssignmentSource {
  /** Every probe node, live or not. */
  probeNodes(): ProbeNode[];
  groups(): Iterable<Group>;
  nodeName(id: string): string;
}

/** Changes gathered this long before they are pushed. */
const GATHER_MS = 50;
/**
 * Pushes at most this often: a burst of operate_monitor is one push (the whole list, megabytes at
 * 10,000 groups) a second per agent, not one per request.
 */
const PUSH_EVERY_MS = 1000;

/**
 * Which probe nodes watch which group, kept incrementally: a group's change re-picks that group only
 * and touches the assignments of the nodes it enters or leaves; only a change in the set of live probe
 * nodes re-picks every group. Agents whose assignment changed get it pushed (the whole list, as the
 * `assign` command takes it), coalesced: one push in flight per agent, changes meanwhile wait for the
 * next one.
 */
export class Assignments {
  /** Current pick of probe nodes per group. */
  readonly picks = new Map<string, string[]>();
  /** What each picked node probes: node id → group key → check. */
  private readonly perNode = new Map<string, Map<string, VersionedCheck>>();
  /** Live probe nodes as of the last refresh, and which of them are agents linked here. */
  private live: ProbeNode[] = [];
  private liveKey = '';
  private agents = new Set<string>();
  /** Agents whose assignment changed since their last successful push. */
  private readonly dirty = new Set<string>();
  private readonly pushing = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private lastPushAt = 0;
  private stopped = false;

  constructor(
    private readonly ctx: ControllerContext<Spec>,
    private readonly src: AssignmentSource,
  ) {}

  /**
   * Re-reads the probe nodes; when the live ones changed (a node up or down, one added, an external
   * prober gone quiet), every group is picked again. Cheap otherwise: called on node events and on a timer.
   *
   * Every controller sharing a database picks from every live probe node, wherever it is linked (the
   * picks come out the same everywhere), and pushes assignments to the agents linked to itself only.
   */
  refresh(): void {
    const live = this.src.probeNodes().filter((n) => n.live);
    const key = live.map((n) => `${n.kind}:${n.id}:${n.name}:${n.address}`).sort().join('\n');
    const here = new Set<string>();
    for (const n of live) if (n.kind === 'agent' && n.here) here.add(n.id);
    // New here (just linked, or moved over from a controller that died): its assignment comes from here now.
    for (const id of here) if (!this.agents.has(id)) this.dirty.add(id);
    this.agents = here;
    if (key !== this.liveKey) {
      this.live = live;
      this.liveKey = key;
      this.repickAll();
    }
    this.schedulePush();
  }

  /** Picks every group again (the groups were replaced wholesale). */
  repick(): void {
    this.repickAll();
    this.schedulePush();
  }

  /** One group created or replaced (g) or stopped (undefined): re-picks it alone. */
  group(key: string, g: Group | undefined): void {
    const before = this.picks.get(key) ?? [];
    const after = g ? pickNodes(g.key, g.level, candidates(g, this.live).map((n) => n.id)) : [];
    if (g) this.picks.set(key, after);
    else this.picks.delete(key);
    for (const id of before) if (!after.includes(id)) this.unassign(id, key);
    // A replaced group's check may have changed for the nodes that keep it, too.
    if (g) for (const id of after) this.assign(id, g);
    this.schedulePush();
  }

  /** Groups a node probes now. */
  tasksFor(nodeId: string): string[] {
    return [...(this.perNode.get(nodeId)?.keys() ?? [])];
  }

  /** Sends an agent its assignment again (it came back up, or restarted). */
  resend(nodeId: string): void {
    if (!this.agents.has(nodeId)) return;
    this.dirty.add(nodeId);
    this.schedulePush();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private repickAll(): void {
    const old = new Map([...this.perNode].map(([id, m]) => [id, new Set(m.keys())]));
    this.picks.clear();
    this.perNode.clear();
    for (const g of this.src.groups()) {
      const pick = pickNodes(g.key, g.level, candidates(g, this.live).map((n) => n.id));
      this.picks.set(g.key, pick);
      for (const id of pick) this.nodeMap(id).set(g.key, checkSpec(g));
    }
    // Agents whose set of groups changed get a push; so do those left with none.
    for (const id of this.agents) {
      const was = old.get(id);
      const now = this.perNode.get(id);
      if (!was || !now || was.size !== now.size || [...now.keys()].some((k) => !was.has(k))) this.dirty.add(id);
    }
  }

  private assign(nodeId: string, g: Group): void {
    this.nodeMap(nodeId).set(g.key, checkSpec(g));
    if (this.agents.has(nodeId)) this.dirty.add(nodeId);
  }

  private unassign(nodeId: string, key: string): void {
    this.perNode.get(nodeId)?.delete(key);
    if (this.agents.has(nodeId)) this.dirty.add(nodeId);
  }

  private nodeMap(id: string): Map<string, VersionedCheck> {
    let m = this.perNode.get(id);
    if (!m) this.perNode.set(id, (m = new Map()));
    return m;
  }

  private schedulePush(): void {
    if (this.timer || this.stopped || this.dirty.size === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.lastPushAt = Date.now();
        for (const id of [...this.dirty]) this.push(id);
      },
      Math.max(GATHER_MS, this.lastPushAt + PUSH_EVERY_MS - Date.now()),
    );
    this.timer.unref();
  }

  private push(id: string): void {
    if (this.pushing.has(id) || this.stopped) return;
    if (!this.agents.has(id)) {
      this.dirty.delete(id);
      return;
    }
    this.dirty.delete(id);
    this.pushing.add(id);
    const groups = [...(this.perNode.get(id)?.values() ?? [])];
    // Names this assignment for the agent's status: its groups and their versions.
    const hash = createHash('sha256')
      .update(groups.map((c) => `${c.key}@${c.version}`).sort().join('\n'))
      .digest('hex')
      .slice(0, 32);
    this.ctx
      .command(id, 'assign', { hash, groups: groups.map(({ version: _v, ...c }) => c) }, { timeoutMs: 30_000 })
      .then(
        () => {
          this.pushing.delete(id);
          this.schedulePush();
        },
        (err) => {
          // Pushed again by the next refresh (every few seconds), not at once: the node may be going down.
          this.pushing.delete(id);
          this.dirty.add(id);
          this.ctx.log.warn({ node: this.src.nodeName(id), err: (err as Error).message }, 'could not push probe assignment; retrying');
        },
      );
  }
}

type VersionedCheck = CheckSpec & { version: number };

function candidates(g: Group, nodes: ProbeNode[]): ProbeNode[] {
  if (g.nodeRefs.length === 0) return nodes;
  return nodes.filter((n) => g.nodeRefs.some((r) => r === n.id || r === n.name || r === n.address));
}

export function checkSpec(g: Group): VersionedCheck {
  return { key: g.key, protocol: g.protocol, port: g.port, path: g.path, domain: g.domain, cookies: g.cookies, httpCode: g.httpCode, interval: g.interval, timeout: g.timeout, retryCount: g.retryCount, records: g.records, version: g.updatedAt };
}
