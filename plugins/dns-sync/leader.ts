/**
 * The controller's dns-sync: one writer for every line. It evaluates (read every line, decide, write
 * what differs, read back) at start, at once when a node goes down or up, when a prober verdict or an
 * agent's declaration changes, when a node has been up for `upAfter`, every `reconcileInterval`, and
 * on demand; failed lines go to the durable retry queue and come back through the same evaluation.
 * Evaluations never overlap, and requests made during one are folded into a single next one.
 */
import type { ControllerContext, Leased, Secret, SingletonTerm, Store } from '../sdk/index.ts';
import { createSerial } from '../sdk/serial.ts';
import type { NodeDeclaration, ProviderConfig } from './config.ts';
import type { LineDecision } from './decision.ts';
import { fqdn } from './lines.ts';
import { nextSettleAt, probeLiveness, watchdogLiveness } from './liveness.ts';
import { mergeDeclarations, type LivenessInput } from './nodes.ts';
import { createProvider, publishedName, type DnsProvider, type LineRef } from './providers/index.ts';
import { groupBy } from './providers/provider.ts';
import { DryRunProvider } from './providers/dry-run.ts';
import { runPass, type PassResult } from './reconcile.ts';
import { failedAttempts, RetryQueue, retryItemSchema } from './retries.ts';
import { emptyState, type Persisted } from './state.ts';
import { lineStatusRows, type LineStatus } from './status.ts';
import { clusterView, liveCount, type ClusterView } from './cocoa/view.ts';
import { registerDnsSyncMetrics, type DnsSyncMetrics } from './cocoa/metrics.ts';
import type { RetryItem } from './writer.ts';
import type { Spec } from './spec.ts';

/**
 * The controller's heartbeat settings are not visible to a plugin; CocoaSyncer's `timeout` is in whole
 * minutes, so the default down delay (3 missed 2 s beats) and anything under a minute show as 1.
 */
const DOWN_AFTER_MS = 6000;

export interface PassSummary {
  at: number;
  /** full: every line; retry: the lines due in the retry queue (every line is still decided). */
  kind: 'full' | 'retry';
  written: number;
  switched: number;
  unchanged: number;
  failed: number;
  /** Lines no live node can serve. */
  alerts: number;
  timing: PassResult['timing'];
}

export class Leader {
  store!: Store<Persisted>;
  retries!: RetryQueue;
  private providers = new Map<string, DnsProvider>();
  private latest: { decisions: LineDecision[]; summary: PassSummary } | null = null;
  private metrics!: DnsSyncMetrics;
  private readonly serial = createSerial();
  private wanted: { triggeredAt: number | null } | null = null;
  private draining: Promise<void> | null = null;
  private retrying = false;
  private stopped = false;
  private cancelSettle: (() => void) | undefined;
  private cancelReconcile: (() => void) | undefined;
  private lastCounts = '';
  /** Set while this controller holds the singleton lease: only then does it decide and write records. */
  private term: SingletonTerm | undefined;
  /** Until then a node not counted yet is joining, not down: agents link in the first seconds of a term (a start, a takeover). */
  private joinUntil = 0;

  constructor(private readonly ctx: ControllerContext<Spec>) {}

  async start(): Promise<void> {
    this.store = await this.ctx.openStore<Persisted>(emptyState(Date.now()));
    this.retries = new RetryQueue(await this.ctx.openQueue('retries', retryItemSchema));
    await this.retries.refresh([]);
    this.buildProviders();
    this.metrics = registerDnsSyncMetrics(this.ctx.metrics, () => ({ view: this.view(), now: Date.now(), pendingWrites: this.retries.count() }));
    this.retries.onReady(() => this.retryDue());
    this.scheduleReconcile();
  }

  /**
   * Decides and writes records for a term of the singleton lease (one controller at a time when several
   * share a database); returns the end of it. The first evaluation runs in the background: a provider
   * that is slow to answer must not hold up the term's start.
   */
  lead(term: SingletonTerm): () => Promise<void> {
    this.term = term;
    const graceMs = this.ctx.config.upAfter * 1000;
    this.joinUntil = Date.now() + graceMs;
    // A node still not heard from then is down: the pass at that moment raises its alert.
    term.schedule.after(graceMs + 10, () => this.request());
    void this.request();
    this.retryDue();
    return async () => {
      if (this.term === term) this.term = undefined;
      this.cancelSettle?.();
      this.cancelSettle = undefined;
      await this.serial.idle();
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.serial.idle();
  }

  async update(): Promise<void> {
    await this.serial.run(async () => {
      this.buildProviders();
      await this.store.update((d) => void (d.updatedAt = Date.now()));
    });
    this.scheduleReconcile();
    void this.request();
  }

  // ---- what the decision takes ----

  /** Node declarations by node name: what agents declared, overridden whole by the controller's `nodes`. */
  nodes(): Record<string, NodeDeclaration> {
    const fromAgents: Record<string, NodeDeclaration> = Object.create(null);
    for (const [id, decl] of Object.entries(this.store.data.declared)) {
      const n = this.ctx.nodes.get(id);
      if (n) fromAgents[n.name] = decl;
    }
    return mergeDeclarations(this.ctx.config.nodes, fromAgents);
  }

  /** Whether a node's declaration comes from the controller's config or from its agent. */
  sourceOf(name: string): 'config' | 'agent' {
    return Object.hasOwn(this.ctx.config.nodes, name) ? 'config' : 'agent';
  }

  private liveness(nodes: Record<string, NodeDeclaration>): LivenessInput {
    return { watchdog: watchdogLiveness(this.ctx.nodes.list(), this.store.data.since, this.joinUntil), probes: probeLiveness(this.ctx.config.services, nodes, this.store.data.probes) };
  }

  // ---- evaluations ----

  /** Asks for a full evaluation; resolves once one that started after this call has finished. `triggeredAt`: when the change behind it happened (decision lag). */
  request(triggeredAt: number | null = null): Promise<void> {
    const term = this.term;
    if (this.stopped || !term) return Promise.resolve();
    if (!this.wanted) this.wanted = { triggeredAt };
    else if (triggeredAt !== null) this.wanted.triggeredAt = Math.min(this.wanted.triggeredAt ?? triggeredAt, triggeredAt);
    this.draining ??= term.run(() => this.drain());
    return this.draining;
  }

  private async drain(): Promise<void> {
    try {
      while (this.wanted && !this.stopped && this.term) {
        const w = this.wanted;
        this.wanted = null;
        await this.serial.run(() => this.pass(w.triggeredAt, [])).catch((err) => this.ctx.log.error({ err: (err as Error).message }, 'dns-sync evaluation failed; the next one retries'));
      }
    } finally {
      this.draining = null;
    }
  }

  /** Lines due in the retry queue, in one evaluation that acts on them only. */
  private retryDue(): void {
    const term = this.term;
    if (this.retrying || this.stopped || !term) return;
    this.retrying = true;
    term
      .run(() => this.serial.run(async () => {
        if (this.stopped || this.term !== term) return;
        const leased = await this.retries.leaseDue();
        if (leased.length) await this.pass(null, leased);
      }))
      .catch((err) => this.ctx.log.error({ err: (err as Error).message }, 'dns-sync retry of failed lines failed; the queue hands them out again'))
      .finally(async () => {
        this.retrying = false;
        const next = await this.retries.nextDueAt().catch(() => undefined);
        if (next !== undefined && next <= Date.now()) this.retryDue();
      });
  }

  private async pass(triggeredAt: number | null, leased: Leased<RetryItem>[]): Promise<void> {
    const cfg = this.ctx.config;
    const nodes = this.nodes();
    const liveness = this.liveness(nodes);
    const now = Date.now();
    const held = new Map(leased.map((l) => [l.item.key, l]));
    const result = await runPass({
      services: cfg.services,
      nodes,
      providers: this.providers,
      liveness,
      now,
      upAfterMs: cfg.upAfter * 1000,
      backoff: cfg.retry,
      ...(leased.length ? { only: new Set(held.keys()), attempts: new Map(leased.map((l) => [l.item.key, failedAttempts(l)])) } : {}),
    });
    // The queue first: a failed line must be on disk before anything else can go wrong.
    const acted = leased.length ? [] : result.decisions.map((d) => d.key);
    const fresh = await this.retries.settle(acted, result.failures, held, Date.now());
    await this.retries.refresh(result.decisions.map((d) => d.key));
    this.latest = {
      decisions: result.decisions,
      summary: { at: now, kind: leased.length ? 'retry' : 'full', written: result.written, switched: result.switched.length, unchanged: result.unchanged, failed: result.failures.length, alerts: result.alerts.length, timing: result.timing },
    };
    this.metrics.recordPass(result, triggeredAt, Date.now());
    await this.announce(result, fresh);
    // One line per provider, not per line: a provider that is down fails every line it holds.
    for (const [provider, list] of groupBy(result.failures, (f) => f.provider)) {
      this.ctx.log.warn({ provider, lines: list.length, first: `${list[0].service} ${list[0].line} ${list[0].recordType}`, err: list[0].error, retryInMs: list[0].retryInMs }, 'dns line writes failed; queued for retry');
    }
    this.shareCounts();
    this.armSettle(liveness, now);
  }

  /** Events, then what the status shows of them (last switches, open alerts, dry-run records), kept across restarts. */
  private async announce(result: PassResult, fresh: RetryItem[]): Promise<void> {
    const byLine = new Map(result.decisions.map((d) => [`${d.service}\n${d.ref.line}\n${d.ref.type}`, d]));
    const decisionOf = (service: string, line: string, type: string) => byLine.get(`${service}\n${line}\n${type}`)!;
    const switched = result.switched.map((s) => ({ s, d: decisionOf(s.service, s.line, s.recordType) }));
    const alerts = new Map(result.alerts.map((a) => [a.key, a]));
    const raised = result.alerts.filter((a) => this.store.data.alerts[a.key] === undefined);
    const decided = new Set(result.decisions.map((d) => d.key));
    const now = Date.now();

    await Promise.all([
      ...switched.map(({ s, d }) => this.ctx.events.emit('dns.switched', { service: s.service, line: s.line, recordType: s.recordType, name: this.nameOf(d.provider, d.ref), from: s.from, to: s.to, address: d.value!, reason: s.reason })),
      ...raised.map((a) => {
        const d = decisionOf(a.service, a.line, a.recordType);
        return this.ctx.events.emit('dns.alert', { service: a.service, line: a.line, recordType: a.recordType, name: this.nameOf(d.provider, d.ref), holder: a.holder, message: a.message });
      }),
      ...fresh.map((f) => {
        const d = decisionOf(f.service, f.line, f.recordType);
        return this.ctx.events.emit('dns.failed', { service: f.service, line: f.line, recordType: f.recordType, name: this.nameOf(f.provider, d.ref), provider: f.provider, attempt: f.attempt, error: f.error, retryAt: new Date(now + f.retryInMs).toISOString() });
      }),
    ]);
    for (const { s, d } of switched) this.ctx.log.debug({ service: s.service, line: s.line, type: s.recordType, from: s.from, to: s.to, address: d.value }, 'dns line switched');
    if (switched.length) this.ctx.log.info({ lines: switched.length, to: [...new Set(switched.map(({ s }) => s.to))] }, 'dns lines switched');
    for (const a of raised) this.ctx.log.warn({ service: a.service, line: a.line, type: a.recordType }, a.message);

    const dryRun = [...this.providers.values()].filter((p): p is DryRunProvider => p instanceof DryRunProvider && (result.byProvider.get(p.name)?.written ?? 0) > 0);
    const stale = Object.keys(this.store.data.lastSwitch).some((k) => !decided.has(k)) || Object.keys(this.store.data.alerts).some((k) => !alerts.has(k));
    if (!switched.length && !raised.length && !dryRun.length && !stale) return;
    await this.store.update((data) => {
      for (const { s, d } of switched) data.lastSwitch[d.key] = { ...s, at: now };
      for (const a of raised) data.alerts[a.key] = now;
      for (const k of Object.keys(data.alerts)) if (!alerts.has(k)) delete data.alerts[k];
      // Lines no longer managed (a service or node removed from the config) leave the status.
      for (const k of Object.keys(data.lastSwitch)) if (!decided.has(k)) delete data.lastSwitch[k];
      for (const p of dryRun) data.dryRun[p.name] = p.records();
    });
  }

  /** One evaluation at the moment the next node will have been up for upAfter: its lines come home then. */
  private armSettle(liveness: LivenessInput, now: number): void {
    this.cancelSettle?.();
    this.cancelSettle = undefined;
    const at = nextSettleAt(liveness, this.ctx.config.upAfter * 1000, now);
    if (at === undefined || this.stopped) return;
    this.cancelSettle = this.ctx.schedule.after(Math.max(0, at - Date.now()) + 10, () => this.request());
  }

  private scheduleReconcile(): void {
    this.cancelReconcile?.();
    this.cancelReconcile = this.ctx.schedule.every(this.ctx.config.reconcileInterval * 1000, () => {
      // Messages are best effort: the periodic copy heals an agent that missed a change.
      this.shareCounts({ force: true });
      return this.request();
    });
  }

  private buildProviders(): void {
    const next = new Map<string, DnsProvider>();
    for (const [name, cfg] of Object.entries(this.ctx.config.providers)) {
      next.set(name, cfg.type === 'dry-run' ? new DryRunProvider(name, cfg, Date.now, this.store.data.dryRun[name] ?? []) : createProvider(name, cfg));
    }
    this.providers = next;
  }

  // ---- what the surfaces read ----

  /** What getClusterInfo callers must present; undefined: nobody gets in. */
  secret(): Secret | undefined {
    return this.ctx.config.cocoaSecret;
  }

  nameOf(provider: string, ref: LineRef): string {
    const cfg: ProviderConfig | undefined = this.ctx.config.providers[provider];
    return cfg ? publishedName(cfg, ref) : fqdn(ref.record, ref.domain);
  }

  lines(): LineStatus[] {
    if (!this.latest) return [];
    const pending = new Map(this.latest.decisions.flatMap((d) => {
      const p = this.retries.pending(d.key);
      return p ? [[d.key, p] as const] : [];
    }));
    return lineStatusRows(this.latest.decisions, new Map(Object.entries(this.store.data.lastSwitch)), pending, (d) => this.nameOf(d.provider, d.ref));
  }

  lastPass(): PassSummary | null {
    return this.latest?.summary ?? null;
  }

  /** What each dry-run provider would have written. */
  dryRunRecords(): Array<{ provider: string; records: ReturnType<DryRunProvider['records']> }> {
    return [...this.providers.values()].filter((p): p is DryRunProvider => p instanceof DryRunProvider).map((p) => ({ provider: p.name, records: p.records() }));
  }

  /** CocoaSyncer's view of the cluster; `at` is where the caller reached the controller (its apiPort and nodeAddress). */
  view(at: { apiPort: number; nodeAddress: string } = { apiPort: 0, nodeAddress: '' }): ClusterView {
    const watchdog: Record<string, { up: boolean; lastBeat: number | null }> = Object.create(null);
    for (const n of this.ctx.nodes.list()) watchdog[n.name] = { up: n.state === 'up', lastBeat: n.lastHeartbeat };
    const { createdAt, updatedAt } = this.store.data;
    return clusterView({ ...this.ctx.config, nodes: this.nodes() }, { ...at, downAfterMs: DOWN_AFTER_MS, createdAt, updatedAt, watchdog });
  }

  counts(): { live: number; total: number } {
    const v = this.view();
    return { live: liveCount(v), total: v.nodes.length };
  }

  /** Agents show live/total on their badge: sent when it changes, and to an agent that has just started. */
  shareCounts(opts: { force?: boolean; nodeId?: string } = {}): void {
    if (this.stopped) return;
    const counts = this.counts();
    if (opts.nodeId) {
      this.ctx.send(opts.nodeId, 'cluster', counts);
      return;
    }
    const text = JSON.stringify(counts);
    if (!opts.force && text === this.lastCounts) return;
    this.ctx.broadcast('all', 'cluster', counts);
    this.lastCounts = text;
  }
}
