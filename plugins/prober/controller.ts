import { defineController, idMap, type ControllerContext, type NodeInfo, type Secret, type z } from '../sdk/index.ts';
import type { Group, ProberConfig, ResultBatch } from './schema.ts';
import { spec, type probeChanged, type Spec } from './spec.ts';
import type { HistoryEntry, NodeReg, NodeView, OpenRound, RecordState, Vote } from './state.ts';
import { roundKey } from './state.ts';
import { LEVELS, decide } from './quorum.ts';
import { roundStart } from './rounds.ts';
import { seedRoutes } from './api.ts';
import { restRoutes } from './rest.ts';
import { proberPanel } from './panel.ts';
import { callbackBody } from './callback.ts';
import { History } from './history.ts';
import { ProberStore, type StateRecord } from './store.ts';
import { Assignments, type ProbeNode } from './assignments.ts';

export type { ProbeNode } from './assignments.ts';

const EXTERNAL_LIVE_MS = 3 * 60_000;
/** Rounds decided per tick (250 ms) at most. */
const CLOSE_PER_TICK = 2000;
/**
 * A round still open when the controller stopped is decided no sooner than this after it starts
 * again: agents probed on while it was down and replay those results once they have reconnected
 * (their backoff, then the outbox), which takes longer than graceMs after a slow restart.
 */
const RESTART_WAIT_MS = 5000;

/** The controller's whole prober state and its rules; api.ts, rest.ts and panel.ts read and change it through this. */
export class Prober {
  monitors!: ProberStore;
  history!: History;
  readonly assignments: Assignments;
  private readonly counters;

  constructor(readonly ctx: ControllerContext<Spec>) {
    this.assignments = new Assignments(ctx, { probeNodes: () => this.probeNodes(), groups: () => Object.values(this.monitors.data.groups), nodeName: (id) => this.nodeName(id) });
    this.counters = {
      rounds: ctx.metrics.counter('outpost_prober_rounds_decided_total', 'Probe rounds decided, per group outcome (ok, degraded).'),
      late: ctx.metrics.counter('outpost_prober_late_results_total', 'Probe results that arrived after their round was decided.'),
      callbacks: ctx.metrics.counter('outpost_prober_callbacks_total', 'Round callbacks queued for applications.'),
      changes: ctx.metrics.counter('outpost_prober_state_changes_total', 'Records that changed state (up, down).'),
    };
  }

  get cfg(): ProberConfig {
    return this.ctx.config;
  }

  async open(): Promise<void> {
    this.monitors = await ProberStore.open(this.ctx);
    this.history = await History.open(this.ctx, this.cfg.historyMinutes * 60_000);
  }

  /** Current pick of probe nodes per group. */
  get picks(): ReadonlyMap<string, string[]> {
    return this.assignments.picks;
  }

  /**
   * Stores a group (created or replaced) and re-picks its probe nodes; resolves once on disk. The
   * store applies the change in memory at once, so the pick follows before the write is awaited: a
   * tick running during the fsync would otherwise open a round of the new group expecting no node.
   */
  async putGroup(g: Group): Promise<void> {
    const written = this.monitors.putGroup(g);
    this.assignments.group(g.key, g);
    await written;
  }

  async putNode(reg: NodeReg): Promise<void> {
    const written = this.monitors.putNode(reg);
    this.assignments.refresh();
    await written;
  }

  nodeName(id: string): string {
    if (id.startsWith('ext:')) return id.slice(4);
    return this.ctx.nodes.get(id)?.name ?? id;
  }

  private runsProber(n: NodeInfo): boolean {
    const p = n.plugins.find((x) => x.name === 'prober');
    if (p) return p.state === 'running';
    // Not connected since a controller restart: trust what we saw before.
    return n.plugins.length === 0 && this.monitors.data.knownAgents[n.id] !== undefined;
  }

  /** Linked to this controller (not to another sharing the database). */
  private linkedHere(n: NodeInfo): boolean {
    return n.controller === this.ctx.peers.self;
  }

  /**
   * Agents running the prober that are linked here and not yet known: recorded, so that the other
   * controllers sharing the database count them as probe nodes too (before their first results).
   */
  async noteAgents(now = Date.now()): Promise<void> {
    const known = this.monitors.data.knownAgents;
    const fresh = this.ctx.nodes.list().filter((n) => known[n.id] === undefined && this.linkedHere(n) && n.plugins.some((x) => x.name === 'prober' && x.state === 'running'));
    if (fresh.length) await this.monitors.sawAgents(fresh.map((n) => n.id), now);
  }

  /** Every probe node: prober-running agents (all, or those registered by /add_node) and external probers. */
  probeNodes(now = Date.now()): ProbeNode[] {
    const regs = this.monitors.data.probeNodes;
    const out: ProbeNode[] = [];
    const agentAddresses = new Set<string>();
    for (const n of this.ctx.nodes.list()) {
      if (!this.runsProber(n)) continue;
      agentAddresses.add(n.address);
      if (!this.cfg.autoEnrollAgents && !regs[n.address]) continue;
      // Linked but not yet "up" (its first heartbeats not counted): it probes already, like commands reach it.
      out.push({ id: n.id, name: n.name, address: n.address, kind: 'agent', live: n.state === 'up' || (n.state === 'unknown' && n.connected), here: this.linkedHere(n) });
    }
    for (const r of Object.values(regs)) {
      if (agentAddresses.has(r.ip)) continue;
      out.push({ id: `ext:${r.ip}`, name: r.ip, address: r.ip, kind: 'external', live: now - Math.max(r.addedAt, r.lastDeal ?? 0) < EXTERNAL_LIVE_MS, here: false });
    }
    return out;
  }

  tasksFor(nodeId: string): Group[] {
    return this.assignments.tasksFor(nodeId).flatMap((k) => this.monitors.data.groups[k] ?? []);
  }

  /** Opens rounds that started and decides rounds whose results are due. */
  async tick(now = Date.now()): Promise<void> {
    const open = this.monitors.open;
    const opening: OpenRound[] = [];
    for (const g of Object.values(this.monitors.data.groups)) {
      const r = roundStart(now, g.interval);
      if (!open[roundKey(g.key, r)] && !this.decided(g.key, r)) opening.push({ g: g.key, round: r, expected: this.picks.get(g.key) ?? [], openedAt: now, votes: idMap() });
    }
    await this.monitors.openRounds(opening);
    const due = Object.values(open).filter((o) => {
      const g = this.monitors.data.groups[o.g];
      return !g || now >= this.decideAt(o, g);
    });
    // A few thousand per tick: the rest waits a tick rather than the event loop waiting for all of them.
    if (due.length) await this.close(due.slice(0, CLOSE_PER_TICK), now);
  }

  /** When this controller began deciding rounds: at its start, or when it took the lease over from another. */
  private decidingSince = Date.now();

  /** This controller decides rounds from now on (it holds the singleton lease). */
  takeOver(now = Date.now()): void {
    this.decidingSince = Math.max(this.decidingSince, now);
  }

  /**
   * graceMs after the round ends, or after it was opened late; a round already open when this
   * controller began deciding (its restart, or a takeover from a controller that died) waits for the
   * replays too: agents linked to the dead one relink and send what it never acknowledged.
   */
  private decideAt(o: OpenRound, g: Group): number {
    const usual = Math.max(o.round + g.interval * 1000, o.openedAt ?? 0) + this.cfg.graceMs;
    const openBefore = o.openedAt !== undefined && o.openedAt < this.decidingSince;
    return openBefore ? Math.max(usual, this.decidingSince + RESTART_WAIT_MS) : usual;
  }
  private decided(g: string, round: number): boolean {
    return this.monitors.lastDecided(g) >= round;
  }

  /**
   * Gathers a node's votes for a round into `sink` (the records commitVotes writes); opens the round
   * if the controller has not yet (clock skew); refuses decided rounds. Called once per group and
   * round for a sink (a report or a deal holds one round).
   */
  acceptVotes(g: Group, round: number, node: string, votes: Array<{ record: string; vote: Vote }>, sink: StateRecord[]): { accepted: number; late: number } {
    const key = roundKey(g.key, round);
    if (!this.monitors.open[key]) {
      // Past rounds not decided yet (results replayed after a controller restart) are still decided;
      // rounds already decided, or older than the history window, are late.
      if (this.decided(g.key, round) || round < Date.now() - this.cfg.historyMinutes * 60_000 || round > Date.now() + 60_000) {
        this.counters.late.inc({}, votes.length);
        return { accepted: 0, late: votes.length };
      }
      sink.push({ t: 'open', o: { g: g.key, round, expected: this.picks.get(g.key) ?? [], openedAt: Date.now(), votes: idMap() } });
    }
    const ids = new Set(g.records.map((r) => r.id));
    const v = idMap<Vote>();
    let accepted = 0;
    for (const { record, vote } of votes) {
      if (!ids.has(record)) continue;
      v[record] = vote;
      accepted++;
    }
    if (accepted) sink.push({ t: 'votes', k: key, node, v });
    return { accepted, late: 0 };
  }

  commitVotes(sink: StateRecord[]): Promise<void> {
    return this.monitors.addVotes(sink);
  }

  async onResults(nodeId: string, batch: ResultBatch): Promise<void> {
    if (this.monitors.data.knownAgents[nodeId] === undefined) await this.monitors.sawAgents([nodeId], Date.now());
    const byGroup = new Map<string, Array<{ record: string; vote: Vote }>>();
    for (const r of batch.results ?? []) {
      const vote: Vote = { s: r.status, t: r.resTime, at: r.started };
      if (r.timing) vote.timing = r.timing;
      if (r.certExpires) vote.cert = r.certExpires;
      if (r.error) vote.err = String(r.error).slice(0, 200);
      let list = byGroup.get(r.g);
      if (!list) byGroup.set(r.g, (list = []));
      list.push({ record: r.r, vote });
    }
    const sink: StateRecord[] = [];
    for (const [key, votes] of byGroup) {
      const g = this.monitors.data.groups[key];
      if (g) this.acceptVotes(g, batch.round, nodeId, votes, sink);
    }
    // On disk before the report is acknowledged: a controller crash mid-round loses no result.
    await this.commitVotes(sink);
  }

  private async close(rounds: OpenRound[], now: number): Promise<void> {
    const deliveries: Array<{ id: string; url: string; body: string; contentType: string; secret?: Secret }> = [];
    const changes: Array<z.input<typeof probeChanged>> = [];
    const entries: HistoryEntry[] = [];
    const updates: Array<{ g: string; states: Record<string, RecordState> }> = [];
    for (const o of rounds) {
      const g = this.monitors.data.groups[o.g];
      if (!g) continue;
      const voters = new Set(Object.values(o.votes).flatMap((v) => Object.keys(v)));
      const expected = [...new Set([...o.expected, ...voters])];
      const asked = LEVELS[g.level].nodes === Infinity ? expected.length : LEVELS[g.level].nodes;
      const prev = this.monitors.data.records[g.key] ?? {};
      const states = idMap<RecordState>();
      const result: Array<{ record_id: string; status: number; res_time: number }> = [];
      const entry: HistoryEntry = { g: g.key, round: o.round, decidedAt: now, degraded: expected.length < asked, nodes: expected.map((n) => this.nodeName(n)), missing: [], records: [] };
      const missing = new Set<string>();
      for (const rec of g.records) {
        const votesOf = o.votes[rec.id] ?? {};
        const v = decide(g.level, expected, Object.entries(votesOf).map(([node, x]) => ({ node, status: x.s, resTime: x.t })));
        v.missing.forEach((m) => missing.add(m));
        const before = prev[rec.id];
        const views = idMap<NodeView>(before?.views);
        for (const [node, x] of Object.entries(votesOf)) views[node] = { status: x.s, resTime: x.t, at: x.at, ...(x.timing ? { timing: x.timing } : {}), ...(x.cert ? { certExpires: x.cert } : {}), ...(x.err ? { error: x.err } : {}) };
        const degraded = v.degraded || expected.length < asked;
        if (v.state === 'unknown') {
          // Nobody answered: keep the last known state; the callback leaves the record out.
          states[rec.id] = { ...(before ?? { state: 'unknown', status: 0, resTime: 0, lastChange: null }), degraded: true, lastRound: o.round, views };
          entry.records.push({ record_id: rec.id, state: 'unknown', status: 0, res_time: 0, failures: 0, received: 0 });
          continue;
        }
        const changed = (before?.state ?? 'unknown') !== v.state;
        states[rec.id] = { state: v.state, status: v.status, resTime: v.resTime, degraded, lastRound: o.round, lastChange: changed ? now : (before?.lastChange ?? null), views };
        result.push({ record_id: rec.id, status: v.status, res_time: v.resTime });
        entry.records.push({ record_id: rec.id, state: v.state, status: v.status, res_time: v.resTime, failures: v.failures, received: v.received });
        if (changed) {
          changes.push({ app_name: g.app, group_id: g.groupId, record_id: rec.id, ip: rec.ip, from: before?.state ?? 'unknown', to: v.state, status: v.status, res_time: v.resTime, round: new Date(o.round).toISOString(), degraded, failures: v.failures, received: v.received, nodes: Object.fromEntries(Object.entries(votesOf).map(([n, x]) => [this.nodeName(n), x.s])) });
        }
      }
      entry.missing = [...missing].map((n) => this.nodeName(n));
      if (missing.size) entry.degraded = true;
      entries.push(entry);
      updates.push({ g: g.key, states });
      this.counters.rounds.inc({ outcome: entry.degraded || entry.missing.length ? 'degraded' : 'ok' });
      const app = this.cfg.apps[g.app];
      const url = g.callbackUrl ?? app?.callbackUrl;
      if (url && result.length) {
        const format = app?.callbackFormat ?? 'form';
        deliveries.push({ id: callbackId(g.key, o.round), url, ...callbackBody(format, g.groupId, Math.floor(o.round / 1000), result), ...(app?.callbackSecret ? { secret: app.callbackSecret } : {}) });
      }
    }
    // Queue callbacks first (durable), then drop the rounds: a crash in between decides the round again
    // (here after a restart, or on the controller taking over), and its callback, named by group and
    // round, is the one already queued: one delivery per round, whoever decided it.
    // Queued together so the outbox commits them in one write; call order keeps them in order per URL.
    await Promise.all(deliveries.map((d) => this.ctx.webhooks.deliver(d.url, d.body, { id: d.id, contentType: d.contentType, secret: d.secret, event: 'prober.callback' })));
    this.counters.callbacks.inc({}, deliveries.length);
    await this.monitors.decided(
      updates.map((u) => ({ key: u.g, s: u.states })),
      rounds.map((o) => roundKey(o.g, o.round)),
    );
    await this.history.add(entries, now);
    for (const c of changes) this.counters.changes.inc({ to: String(c.to) });
    await Promise.all(changes.map((c) => this.ctx.events.emit('probe.changed', c)));
  }

  /** Removes a group with its state and open rounds; pending callbacks already queued still go out. */
  async removeGroup(key: string): Promise<void> {
    const written = this.monitors.stopGroup(key);
    this.assignments.group(key, undefined);
    await written;
  }

  /**
   * What another controller changed (a database several share): its monitors are probed from here
   * too, the probe nodes it saw count here. Votes and decided rounds need nothing more than the store.
   */
  remoteChanged(records: StateRecord[], reset: boolean): void {
    if (reset) return this.assignments.repick();
    let nodes = false;
    for (const r of records) {
      if (r.t === 'group') this.assignments.group(r.g.key, this.monitors.data.groups[r.g.key]);
      else if (r.t === 'stop') this.assignments.group(r.key, undefined);
      else if (r.t === 'node' || r.t === 'agent' || r.t === 'deal') nodes = true;
    }
    if (nodes) this.assignments.refresh();
  }
}

/** The callback's delivery id: one per group and round, so a round decided twice is called back once. */
export function callbackId(groupKey: string, round: number): string {
  return `round:${groupKey}:${round}`;
}

export default defineController(spec, (ctx) => {
  const p = new Prober(ctx);
  const offs: Array<() => void> = [];
  return {
    async start() {
      await p.open();
      ctx.metrics.gaugeFn('outpost_prober_groups', 'Monitor groups.', () => Object.keys(p.monitors.data.groups).length);
      ctx.metrics.gaugeFn('outpost_prober_records', 'Monitored records by state.', () => {
        const counts: Record<string, number> = { up: 0, down: 0, unknown: 0 };
        for (const g of Object.values(p.monitors.data.groups)) for (const r of g.records) counts[p.monitors.data.records[g.key]?.[r.id]?.state ?? 'unknown'] += 1;
        return Object.entries(counts).map(([state, v]) => [{ state }, v]);
      });
      ctx.metrics.gaugeFn('outpost_prober_probe_nodes', 'Probe nodes by liveness.', () => {
        const nodes = p.probeNodes();
        return [[{ live: 'true' }, nodes.filter((n) => n.live).length], [{ live: 'false' }, nodes.filter((n) => !n.live).length]];
      });
      ctx.routes.mount([...seedRoutes(p), ...restRoutes(p)]);
      offs.push(
        p.monitors.follow((records, reset) => p.remoteChanged(records, reset)),
        p.history.follow(),
        ctx.nodes.on('up', (n) => {
          p.assignments.refresh();
          p.assignments.resend(n.id);
        }),
        ctx.nodes.on('down', () => p.assignments.refresh()),
      );
      p.assignments.refresh();
      ctx.schedule.every(2000, async () => {
        p.assignments.refresh();
        await p.noteAgents().catch((err) => ctx.log.warn({ err: (err as Error).message }, 'could not record the probing agents linked here; retrying'));
      });
      // Round decisions and their callbacks: on the lease holder only (one controller at a time when
      // several share a database). Results are taken in on every controller, into the shared log,
      // where the holder reads them (as it reads monitors made elsewhere).
      ctx.singleton((term) => {
        p.takeOver();
        term.schedule.every(250, () => p.tick());
      });
    },
    stop() {
      for (const off of offs.splice(0)) off();
      p.assignments.stop();
    },
    onReport: {
      results: (meta, batch) => p.onResults(meta.nodeId, batch),
    },
    panel: proberPanel(p),
  };
});
