import { randomBytes } from 'node:crypto';
import { currentFence, runFenced, type Fence } from '../plugins/sdk/durable/fence.ts';
import { onRemoteChange, openStore, type Store } from '../plugins/sdk/store.ts';
import { retryOnConflict } from '../plugins/sdk/durable/storage-error.ts';
import { requireNode } from '../runtime/node-require.ts';
import type { NodeInfo } from '../plugins/sdk/contract.ts';
import type { PluginStatus } from '../runtime/link.ts';
import type { Log } from '../plugins/sdk/log.ts';
import { newEventId, type EventSink, type NewEvent } from './event-log.ts';
import type { Capabilities } from '../plugins/sdk/capabilities.ts';
import { BeatOrder, type BeatEntry } from './beat-order.ts';

export interface NodeRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  address: string;
  local: boolean;
  enrolledAt: number;
  /** The credential currently valid for this node; deleting the node revokes it. */
  jti: string;
  /** Last decided state, persisted so a controller restart does not re-announce it. */
  state: 'up' | 'down' | 'unknown';
  version?: string;
}

interface Live extends BeatEntry<Live> {
  id: string;
  /**
   * Time of the last beat, 0 before the first (info() shows null). A number from the start: V8 then
   * keeps the field a double written in place, where a null-initialised field boxed a fresh
   * HeapNumber on every beat that lived one interval and was promoted to old space (the bench's tail).
   */
  lastHeartbeat: number;
  goodBeats: number;
  connected: boolean;
  plugins: PluginStatus[];
  outbox: number;
  capabilities?: Capabilities;
  /** When the watchdog last moved the node to its state (this controller's lifetime only). */
  since: number | null;
}

/** A node linked to another controller, as that controller's presence says. */
export interface RemoteLink {
  controller: string;
  plugins: PluginStatus[];
  capabilities?: Capabilities;
}

interface NodesData {
  nodes: Record<string, NodeRecord>;
  /**
   * Events of the changes in this file (enrolled, up, down, deleted), written in the same write as the
   * change and removed once the event log holds them: a crash in between cannot lose the event. Keyed
   * by event id, so that adding or removing one is one row of a store on PostgreSQL (as one array, a
   * takeover marking 10,000 nodes up rewrote and re-read megabytes with every write); `n` orders them.
   */
  unannounced?: Record<string, PendingEvent>;
  /** Where an older release kept them (an array): read, and emptied as they are announced. */
  pending?: Array<Required<NewEvent>>;
}

type PendingEvent = Required<NewEvent> & { n: number };

/** After the event log has taken pending events, they leave nodes.json with the next write, or after this long. */
const PENDING_CLEAR_MS = 1000;

/** How long pending events written by another controller are left to it (it announces them within a write). */
const STRANGERS_WAIT_MS = 5000;

/** Kept apart from nodes.json: it changes on every report, so each commit should be small. */
interface SeqData {
  seqs: Record<string, number>;
}

export interface WatchdogConfig {
  intervalMs: number;
  downAfter: number;
  upAfter: number;
  /**
   * After a controller (re)start, how long nodes not yet heard from get to reconnect before the
   * down window starts counting: their agents may be in a long reconnect backoff, and declaring them
   * all down (then up) on every controller restart would flap every node.
   */
  restartGraceMs?: number;
}

/** Enrolled nodes, their persisted identity and their live state as decided by the watchdog. */
export class Registry {
  private readonly live = new Map<string, Live>();
  /** Nodes heard from since this start, by their last beat: what the watchdog sweeps. */
  private readonly beats = new BeatOrder<Live>();
  /** Nodes "up" before this start and never heard from since are judged once, after the grace (see sweep). */
  private unheardJudged = false;
  private timer: NodeJS.Timeout | undefined;
  /** Nodes never heard from since this start are judged from here, not from the epoch. */
  /** When this controller began deciding (its start, or its latest term of the lease): nodes get the grace from then. */
  private startedAt = Date.now();

  private constructor(
    private readonly store: Store<NodesData>,
    private readonly seqStore: Store<SeqData>,
    private readonly wd: WatchdogConfig,
    private readonly events: EventSink,
    private readonly log: Log,
    private readonly defaultNodeRef: string | undefined,
  ) {
    for (const p of Object.values(store.data.unannounced ?? {})) this.lastN = Math.max(this.lastN, p.n);
    // Nodes enrolled or deleted through another controller sharing the database.
    onRemoteChange(store, (changes) => {
      const theirs = changes.filter((c) => c.field === 'unannounced' && c.key !== undefined);
      if (theirs.length || changes.some((c) => c.field === 'pending')) {
        const now = Date.now();
        for (const c of theirs) {
          const p = this.store.data.unannounced?.[c.key!];
          if (p && !this.strangers.has(p.id)) this.strangers.set(p.id, now);
          if (p && p.n > this.lastN) this.lastN = p.n;
        }
        for (const p of this.store.data.pending ?? []) if (!this.strangers.has(p.id)) this.strangers.set(p.id, now);
      }
      if (!changes.some((c) => c.field === 'nodes')) return;
      this.all = null;
      for (const c of changes) if (c.field === 'nodes' && c.key !== undefined && !this.store.data.nodes[c.key]) this.deletedElsewhere(c.key);
    });
  }

  private deletedElsewhere: (id: string) => void = () => undefined;

  /** This controller's id, and where other controllers' presence says a node is linked (controller/cluster.ts). */
  private cluster: { self: string; elsewhere(id: string): RemoteLink | undefined } = { self: 'local', elsewhere: () => undefined };
  setCluster(c: Registry['cluster']): void {
    this.cluster = c;
  }

  /** Called when a link here opens or closes, or a linked node's plugin states change (presence is rewritten). */
  private linkChanged: () => void = () => undefined;
  onLinkChange(fn: () => void): void {
    this.linkChanged = fn;
  }

  /** What this controller knows of the nodes linked here, for its presence: plugin states and capabilities. */
  linkState(id: string): { plugins: PluginStatus[]; capabilities?: Capabilities } | undefined {
    const l = this.live.get(id);
    return l?.connected ? { plugins: l.plugins, ...(l.capabilities ? { capabilities: l.capabilities } : {}) } : undefined;
  }

  /** Told of nodes another controller deleted (their links held here must go, as the deleting controller's do). */
  onDeletedElsewhere(fn: (id: string) => void): void {
    this.deletedElsewhere = fn;
  }

  static async open(dataDir: string, wd: WatchdogConfig, events: EventSink, log: Log, defaultNode?: string): Promise<Registry> {
    return new Registry(await openStore<NodesData>(dataDir, 'nodes', { nodes: {} }), await openStore<SeqData>(dataDir, 'seqs', { seqs: {} }), wd, events, log, defaultNode);
  }

  /**
   * Starts the watchdog's decisions: singleton work, for a term of the lease (`fence`, the caller's by
   * default). Until then, and after stop(), heartbeats are counted but no node changes state here.
   * `elsewhere`: nodes whose link another live controller holds; they count as beating.
   */
  start(fence: Fence | undefined = currentFence(), elsewhere: () => Set<string> = () => new Set()): void {
    this.deciding = fence ?? true;
    this.elsewhere = elsewhere;
    // A takeover is a restart for the nodes that were linked to the previous holder: they get the grace to relink.
    this.startedAt = Date.now();
    this.unheardJudged = false;
    // Events of changes recorded before a crash and not yet in the event log are announced now.
    this.announce().catch((err) => this.log.error({ err: (err as Error).message }, 'could not record node events; the watchdog retries'));
    // Check twice per interval so detection lands within half an interval of the deadline.
    this.timer = setInterval(() => void this.decide(() => this.sweep()), Math.max(50, Math.floor(this.wd.intervalMs / 2)));
    this.timer.unref();
  }

  stop(): void {
    this.deciding = undefined;
    clearInterval(this.timer);
    clearTimeout(this.clearTimer);
  }

  /** Ids of pending events the event log has taken (they can leave nodes.json). */
  private readonly announced = new Set<string>();
  private announcing: Promise<void> = Promise.resolve();
  private clearTimer: NodeJS.Timeout | undefined;

  /**
   * Pending events another controller wrote, by when they were first seen here: that controller
   * announces them itself (and then clears them), so they are left to it for a while; only if they
   * are still pending after that (it died in between) are they announced from here.
   */
  private readonly strangers = new Map<string, number>();

  /** The highest `n` of an unannounced event seen here: new ones are numbered after it. */
  private lastN = 0;

  /** Events with ids, made before the write that stores them (so the write can name its rows). */
  private newEvents(events: Array<{ event: string; data: unknown }>): PendingEvent[] {
    const ts = new Date().toISOString();
    return events.map((e) => ({ id: newEventId(), ts, event: e.event, data: e.data, n: ++this.lastN }));
  }

  /** Changes' events, written with the changes (see `unannounced`). */
  private pend(d: NodesData, events: PendingEvent[]): void {
    const into = (d.unannounced ??= {});
    for (const e of events) into[e.id] = e;
  }

  /** Every unannounced event, oldest first (an older release's array before the rest). */
  private pendingEvents(): Array<Required<NewEvent>> {
    const keyed = Object.values(this.store.data.unannounced ?? {}).sort((a, b) => a.n - b.n);
    const legacy = this.store.data.pending ?? [];
    return legacy.length ? [...legacy, ...keyed] : keyed;
  }

  /** Whether an event waits for the event log; a scan, since the sweep asks it twice per interval. */
  private hasUnannounced(): boolean {
    for (const id in this.store.data.unannounced ?? {}) if (!this.announced.has(id)) return true;
    return (this.store.data.pending ?? []).some((p) => !this.announced.has(p.id));
  }

  /**
   * Hands pending events to the event log; resolves once it holds them. One hand-over at a time;
   * a failed one (disk full) is retried by the sweep.
   */
  private announce(): Promise<void> {
    const run = this.announcing.catch(() => undefined).then(async () => {
      const pending = this.pendingEvents();
      const now = Date.now();
      const ids = new Set(pending.map((p) => p.id));
      for (const id of this.strangers.keys()) if (!ids.has(id)) this.strangers.delete(id);
      const todo = pending.filter((p) => !this.announced.has(p.id) && !(now - (this.strangers.get(p.id) ?? -Infinity) < STRANGERS_WAIT_MS));
      if (todo.length === 0) return;
      await this.events.record(todo);
      for (const p of todo) this.announced.add(p.id);
      this.clearTimer ??= setTimeout(() => {
        this.clearTimer = undefined;
        const taken = new Set(this.announced);
        void this.store
          .update((d) => {
            if (d.pending?.length) d.pending = d.pending.filter((p) => !taken.has(p.id));
            for (const id of taken) if (d.unannounced) delete d.unannounced[id];
          }, { touches: [['pending'], ...[...taken].map((id) => ['unannounced', id] as const)] })
          .then(() => {
            for (const id of taken) this.announced.delete(id);
          }, () => undefined);
      }, PENDING_CLEAR_MS);
      this.clearTimer.unref();
    });
    this.announcing = run;
    return run;
  }

  /** A fresh node id: enrollment signs the credential first, so the node is stored once, complete. */
  newId(): string {
    return `n_${randomBytes(6).toString('hex')}`;
  }

  /** Stores a new node; resolves once it and its node.enrolled event are recorded. */
  async add(n: Omit<NodeRecord, 'id' | 'enrolledAt' | 'state'> & { id?: string }): Promise<NodeRecord> {
    const rec: NodeRecord = { ...n, id: n.id ?? this.newId(), enrolledAt: Date.now(), state: 'unknown' };
    const [e] = this.newEvents([{ event: 'node.enrolled', data: { node: this.info(rec) } }]);
    await retryOnConflict(() => this.store.update((d) => {
      d.nodes[rec.id] = rec;
      this.all = null;
      this.pend(d, [e]);
    }, { touches: [['nodes', rec.id], ['unannounced', e.id]] }));
    await this.announce();
    return rec;
  }

  /**
   * Every node record, kept between enrollments and deletions: the watchdog walks all nodes twice
   * per heartbeat interval, and Object.values over 10,000 keys was most of its cost.
   */
  private all: NodeRecord[] | null = null;
  private records(): NodeRecord[] {
    return (this.all ??= Object.values(this.store.data.nodes));
  }

  byName(name: string): NodeRecord | undefined {
    for (const rec of this.records()) if (rec.name === name) return rec;
    return undefined;
  }

  record(id: string): NodeRecord | undefined {
    return this.store.data.nodes[id];
  }

  /** Deletes a node; resolves once the deletion and its node.deleted event are recorded. */
  async remove(id: string): Promise<boolean> {
    const rec = this.store.data.nodes[id];
    if (!rec) return false;
    const last = this.info(rec);
    const [e] = this.newEvents([{ event: 'node.deleted', data: { node: last } }]);
    await retryOnConflict(() => this.store.update((d) => {
      delete d.nodes[id];
      this.all = null;
      this.pend(d, [e]);
    }, { touches: [['nodes', id], ['unannounced', e.id]] }));
    await this.seqStore.update((d) => {
      delete d.seqs[id];
    }, { touches: [['seqs', id]] });
    const l = this.live.get(id);
    if (l) this.beats.remove(l);
    this.live.delete(id);
    await this.announce();
    return true;
  }

  async setJti(id: string, jti: string): Promise<void> {
    if (!this.store.data.nodes[id]) return;
    await retryOnConflict(() => this.store.update((d) => {
      const r = d.nodes[id];
      if (r) r.jti = jti;
    }, { touches: [['nodes', id]] }));
  }

  /** Highest report seq applied for a node; replays at or below it are acknowledged without effect. */
  lastSeq(id: string): number {
    return this.seqStore.data.seqs[id] ?? 0;
  }

  async setSeq(id: string, seq: number): Promise<void> {
    if (!this.store.data.nodes[id] || seq <= this.lastSeq(id)) return;
    await this.seqStore.update((d) => {
      d.seqs[id] = seq;
    }, { touches: [['seqs', id]] });
  }

  async hello(id: string, h: { version: string; labels: Record<string, string>; address: string; plugins: PluginStatus[]; capabilities?: Capabilities }): Promise<void> {
    const rec = this.store.data.nodes[id];
    if (!rec) return;
    const l = this.liveOf(id);
    l.connected = true;
    l.capabilities = h.capabilities;
    this.updatePlugins(rec, l, h.plugins);
    this.linkChanged();
    // Written only when the hello changes the record as the write below would: a relink that changes
    // nothing writes nothing, so agents relink while the store is away. Compared on the merged values:
    // an agent saying no address, or fewer labels than the record holds, changes nothing (compared
    // with what it said, each of its hellos was a write, refused with 1013 during an outage).
    const merged = (r: NodeRecord) => ({ version: h.version, address: h.address || r.address, labels: { ...r.labels, ...h.labels } });
    const want = merged(rec);
    if (rec.version !== want.version || rec.address !== want.address || JSON.stringify(rec.labels) !== JSON.stringify(want.labels)) {
      // The record is looked up again on each attempt: a conflict brings the winner's row in.
      await retryOnConflict(() => this.store.update((d) => {
        const r = d.nodes[id];
        if (r) Object.assign(r, merged(r));
      }, { touches: [['nodes', id]] }));
    }
  }

  disconnected(id: string): void {
    const l = this.live.get(id);
    if (l) l.connected = false;
    this.linkChanged();
  }

  heartbeat(id: string, summary: { plugins?: PluginStatus[]; outbox?: number }): void {
    const rec = this.store.data.nodes[id];
    if (!rec) return;
    const l = this.liveOf(id);
    const now = Date.now();
    // A beat only counts towards "up" if it follows the previous one within the down window.
    const timely = l.lastHeartbeat !== 0 && now - l.lastHeartbeat <= this.wd.intervalMs * this.wd.downAfter;
    l.goodBeats = timely ? l.goodBeats + 1 : 1;
    l.lastHeartbeat = now;
    this.beats.beat(l, performance.now());
    if (summary.plugins) this.updatePlugins(rec, l, summary.plugins);
    if (summary.outbox !== undefined) l.outbox = summary.outbox;
    if (this.deciding && rec.state !== 'up' && l.goodBeats >= this.wd.upAfter) this.decide(() => this.transition([rec], 'up')).catch((err) => this.log.error({ err: (err as Error).message, node: rec.name }, 'could not record node up'));
  }

  /** Announces plugins that failed or recovered on a node since its last summary. */
  private updatePlugins(rec: NodeRecord, l: Live, plugins: PluginStatus[]): void {
    if (samePlugins(l.plugins, plugins)) return;
    const before = new Map(l.plugins.map((p) => [p.name, p.state]));
    l.plugins = plugins;
    this.linkChanged();
    const events: NewEvent[] = [];
    for (const p of plugins) {
      const was = before.get(p.name);
      if (p.state === 'failed' && was !== 'failed') events.push({ event: 'plugin.failed', data: { node: { id: rec.id, name: rec.name }, plugin: p.name, error: p.error } });
      if (p.state === 'running' && was === 'failed') events.push({ event: 'plugin.recovered', data: { node: { id: rec.id, name: rec.name }, plugin: p.name } });
    }
    // The node's plugin states live in memory only (the agent reports them again after a restart).
    if (events.length) this.events.record(events).catch((err) => this.log.error({ err: (err as Error).message, node: rec.name }, 'could not record plugin events'));
  }

  private sweeping = false;
  /** Set while this controller makes the watchdog's decisions (the fence of its term, or true unfenced). */
  private deciding: Fence | true | undefined;
  private elsewhere: () => Set<string> = () => new Set();

  /** Runs a decision under the term's fence. */
  private decide<R>(fn: () => R): R {
    const d = this.deciding;
    return d === undefined || d === true ? fn() : runFenced(d, fn);
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const window = this.wd.intervalMs * this.wd.downAfter;
      const down: NodeRecord[] = [];
      const up: NodeRecord[] = [];
      // Linked to another live controller (its presence says so): beating there.
      const elsewhere = this.elsewhere();
      for (const id of elsewhere) {
        const rec = this.store.data.nodes[id];
        if (rec && rec.state !== 'up' && !this.live.get(id)?.connected) up.push(rec);
      }
      // Only the nodes silent past the window: each comes back into the order with its next beat.
      for (const l of this.beats.takeOlderThan(performance.now() - window)) {
        const rec = this.store.data.nodes[l.id];
        if (rec && rec.state !== 'down' && !elsewhere.has(l.id)) {
          l.goodBeats = 0;
          down.push(rec);
        }
      }
      // Nodes never heard from since this start: those "up" before it are down once the grace and a window
      // have passed. One enrolled but never heard from stays "unknown": it has missed no beat.
      if (!this.unheardJudged && Date.now() - (this.startedAt + (this.wd.restartGraceMs ?? 0)) > window) {
        this.unheardJudged = true;
        for (const rec of this.records()) {
          if (rec.state === 'up' && !this.live.get(rec.id)?.lastHeartbeat && !elsewhere.has(rec.id)) down.push(rec);
        }
      }
      if (up.length) await this.transition(up, 'up');
      // Many nodes can drop at once (a network cut): one write for all of them.
      if (down.length) await this.transition(down, 'down');
      else if (this.hasUnannounced()) await this.announce();
    } catch (err) {
      // The states and their events stay pending in memory; the next sweep writes them again.
      this.log.error({ err: (err as Error).message }, 'could not record node states or their events; retrying');
    } finally {
      this.sweeping = false;
    }
  }

  /** Records the new state and its events in one write, then hands the events to the event log. */
  private async transition(recs: NodeRecord[], state: 'up' | 'down'): Promise<void> {
    const now = Date.now();
    // Ids made once: a retry after a conflict writes the same events again, not new ones.
    const ids = this.newEvents(recs.map(() => ({ event: '', data: null })));
    await retryOnConflict(() => this.store.update((d) => {
      const events = recs.map((r, i) => {
        const previous = r.state;
        r.state = state;
        this.liveOf(r.id).since = now;
        return { ...ids[i], event: `node.${state}`, data: { node: this.info(r), previous } };
      });
      this.pend(d, events);
    }, { touches: [...recs.map((r) => ['nodes', r.id] as const), ...ids.map((e) => ['unannounced', e.id] as const)] }));
    await this.announce();
  }

  private liveOf(id: string): Live {
    let l = this.live.get(id);
    if (!l) {
      l = { id, lastHeartbeat: 0, beatAt: 0, older: null, newer: null, goodBeats: 0, connected: false, plugins: [], outbox: 0, since: null };
      this.live.set(id, l);
    }
    return l;
  }

  info(rec: NodeRecord): NodeInfo & { enrolledAt: number; version?: string; outbox: number } {
    const l = this.liveOf(rec.id);
    // Linked here, or to another controller whose presence carries the node's plugin states and capabilities.
    const link: RemoteLink | undefined = l.connected ? { controller: this.cluster.self, plugins: l.plugins, capabilities: l.capabilities } : this.cluster.elsewhere(rec.id);
    return {
      id: rec.id,
      name: rec.name,
      labels: rec.labels,
      address: rec.address,
      local: rec.local,
      state: rec.state,
      lastHeartbeat: l.lastHeartbeat || null,
      plugins: (link ?? l).plugins,
      connected: link !== undefined,
      ...(link ? { controller: link.controller } : {}),
      since: l.since,
      enrolledAt: rec.enrolledAt,
      version: rec.version,
      outbox: l.outbox,
      ...((link ?? l).capabilities ? { capabilities: (link ?? l).capabilities } : {}),
    };
  }

  /**
   * Nodes per state without building every node's info: GET /api/v1/status and the outpost_nodes gauge
   * are polled, and listing 10,000 nodes for three numbers held the event loop ~50 ms each time.
   */
  counts(): { total: number; up: number; down: number; unknown: number } {
    const c = { total: 0, up: 0, down: 0, unknown: 0 };
    for (const rec of this.records()) {
      c.total++;
      c[rec.state]++;
    }
    return c;
  }

  /**
   * The per-node metrics' samples, in one pass without building each node's info (a scrape at 30,000
   * nodes built 120,000 of them). Label objects are kept per node between scrapes.
   */
  metricSamples(): Record<'up' | 'connected' | 'lastHeartbeat' | 'outbox', Array<[{ node: string; node_id: string }, number]>> {
    const out = { up: [], connected: [], lastHeartbeat: [], outbox: [] } as ReturnType<Registry['metricSamples']>;
    const records = this.records();
    // Deleted nodes' labels go when they outnumber a tenth of the nodes (not a new map every scrape).
    if (this.metricLabels.size > records.length * 1.1) this.metricLabels = new Map();
    for (const rec of records) {
      const l = this.live.get(rec.id);
      let lb = this.metricLabels.get(rec.id);
      if (!lb || lb.node !== rec.name) this.metricLabels.set(rec.id, (lb = { node: rec.name, node_id: rec.id }));
      out.up.push([lb, rec.state === 'up' ? 1 : 0]);
      out.connected.push([lb, l?.connected === true || this.cluster.elsewhere(rec.id) !== undefined ? 1 : 0]);
      if (l?.lastHeartbeat) out.lastHeartbeat.push([lb, l.lastHeartbeat / 1000]);
      out.outbox.push([lb, l?.outbox ?? 0]);
    }
    return out;
  }
  private metricLabels = new Map<string, { node: string; node_id: string }>();

  list(): ReturnType<Registry['info']>[] {
    return this.records().map((r) => this.info(r));
  }

  get(id: string): ReturnType<Registry['info']> | undefined {
    const rec = this.store.data.nodes[id];
    return rec && this.info(rec);
  }

  resolve(ref: string): ReturnType<Registry['info']> | undefined {
    // By id first without listing every node: with thousands of nodes the scan is what costs.
    const byId = Object.hasOwn(this.store.data.nodes, ref) ? this.store.data.nodes[ref] : undefined;
    if (byId) return this.info(byId);
    const nodes = this.records();
    const rec = nodes.find((n) => n.name === ref) ?? nodes.find((n) => n.address === ref);
    return rec && this.info(rec);
  }

  /** A node that can take `plugin`'s commands now (runtime/node-require.ts). */
  require(ref: string | undefined, plugin: string): ReturnType<Registry['info']> {
    return requireNode({ resolve: (r) => this.resolve(r), defaultNode: () => this.defaultNode(), count: () => this.records().length }, ref, plugin);
  }

  defaultNode(): ReturnType<Registry['info']> | undefined {
    if (this.defaultNodeRef) return this.resolve(this.defaultNodeRef);
    const nodes = this.records();
    const local = nodes.find((n) => n.local);
    if (local) return this.info(local);
    return nodes.length === 1 ? this.info(nodes[0]) : undefined;
  }
}

/**
 * Whether a summary repeats the plugin states already held. Nearly every heartbeat does; keeping the
 * held list then lets the new one die young. Replacing it on every beat kept each node's list alive
 * for a whole interval: tens of thousands of objects surviving each scavenge at 10,000 nodes, copied,
 * promoted and left to die in old space (the link bench's p99 tail, docs/benchmarks.md).
 */
function samePlugins(a: PluginStatus[], b: PluginStatus[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].name !== b[i].name || a[i].state !== b[i].state || a[i].error !== b[i].error) return false;
  return true;
}
