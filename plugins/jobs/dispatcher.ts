/**
 * Hands due tasks to nodes and follows each attempt to its end. A due item is leased from the queue
 * for the task's timeout plus the grace; the attempt is written, then sent to the least busy node in a
 * `run` command (batched per node); the node reports the outcome through its durable outbox. An
 * attempt ends without an outcome when its node goes down, restarts (`started` with a new boot) or
 * lets the lease run out: it is closed as lost and the task goes to another node at once.
 */
import { refreshLog, type Leased, type NodeInfo, type SingletonTerm } from '../sdk/index.ts';
import { pickNode, whyWaiting, eligible, type Candidate, type DispatchPolicy } from './dispatch.ts';
import { queueId, type DueItem, type Jobs } from './jobs.ts';
import type { OutcomeReport, RunJobArgs } from './spec.ts';
import { isFinal } from './task-book.ts';
import { STATUS, cancelTask, finishAttempt, loseAttempt, startAttempt, type Task, type Transition } from './task.ts';

/** Leases are renewed to each task's own timeout at once; this only has to outlast the longest. */
const FIRST_LEASE_MS = 3_600_000 + 60_000;
/** How long a node has to take a `run` command. */
const RUN_ACK_MS = 10_000;
/** Due items taken per pass at most, and jobs per `run` command (and their content bytes). */
const PULL_MAX = 512;
const RUN_MAX_JOBS = 256;
const RUN_MAX_BYTES = 1024 * 1024;
/** Dispatch lateness buckets, seconds: the goal is 50 ms. */
export const LATENESS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300];

interface Attempting {
  node: string;
  n: number;
  /** The agent incarnation that took it; unknown until it answered (or after a controller restart). */
  boot?: string;
  /** The node said the callback ended: its slot is free; the outcome is in the node's outbox. */
  ended?: boolean;
}

export class Dispatcher {
  /** Attempts in flight by task id. */
  private readonly inFlight = new Map<number, Attempting>();
  private readonly perNode = new Map<string, { inFlight: number; lastDispatchAt: number }>();
  /** Why due tasks wait (no node can take them), or undefined when nothing waits. */
  waiting: string | undefined;
  private stopped = true;
  private term: SingletonTerm | undefined;
  private pulling = false;
  private pullAgain = false;
  private readonly lateness;
  private readonly latency;

  constructor(private readonly j: Jobs) {
    this.lateness = j.ctx.metrics.histogram('outpost_jobs_dispatch_lateness_seconds', 'Time from when a task (or its retry) was due to when it was handed to a node.', LATENESS_BUCKETS);
    this.latency = j.ctx.metrics.histogram('outpost_jobs_callback_duration_seconds', 'Callback attempts as timed by the node, by outcome (success, failed).');
  }

  private get policy(): DispatchPolicy {
    return { labels: this.j.cfg.labels, concurrencyPerNode: this.j.cfg.concurrencyPerNode };
  }

  private get graceMs(): number {
    return this.j.cfg.leaseGraceSec * 1000;
  }

  /** After a (re)start: attempts recorded as running are waited for until their lease would end, pending tasks are queued. */
  async reconcile(): Promise<void> {
    const now = Date.now();
    const work: Array<Promise<void>> = [];
    for (const task of this.j.book.values()) {
      if (task.status === STATUS.running) {
        const a = task.attempts.at(-1)!;
        this.track(task.id, { node: a.node, n: a.n });
        const until = a.startedAt + task.timeout + this.graceMs;
        const item = await this.j.queue.get(queueId(task.id));
        if (!item) work.push(this.j.queue.schedule({ id: task.id }, until, { id: queueId(task.id) }).then(() => undefined));
        else if (item.dueAt !== until) work.push(this.j.queue.fail(queueId(task.id), until - now).then(() => undefined));
      } else {
        work.push(this.j.syncQueue(task, { keepMatching: true }));
      }
    }
    await Promise.all(work);
    await this.j.announce(this.j.book.toAnnounce());
  }

  /** Once per plugin start: what is shown whether or not this controller dispatches. */
  setup(): void {
    const ctx = this.j.ctx;
    ctx.metrics.gaugeFn('outpost_jobs_in_flight', 'Callback attempts in flight, by node.', () => [...this.perNode].map(([id, n]) => [{ node: this.j.nodeName(id) }, n.inFlight]));
    ctx.metrics.gaugeFn('outpost_jobs_waiting_tasks', 'Due tasks waiting because no node can take them.', () => (this.waiting ? this.dueCount() : 0));
  }

  /**
   * Dispatches for a term of the singleton lease (one controller at a time when several share a
   * database): every pass runs as the term's work, whoever asks for it (a report, a node coming up).
   * Returns the end of the term's dispatching.
   */
  async start(term: SingletonTerm): Promise<() => Promise<void>> {
    const ctx = this.j.ctx;
    this.term = term;
    this.stopped = false;
    await term.run(() => this.reconcile());
    const offs = [this.j.queue.onReady(() => this.pull()), ctx.nodes.on('up', () => this.pull()), ctx.nodes.on('down', (n) => this.loseNode(n))];
    // Nodes' plugin lists change with their heartbeats, without an event: look again while tasks wait.
    term.schedule.every(250, () => term.run(() => this.tick()));
    this.pull();
    return async () => {
      this.stopped = true;
      if (this.term === term) this.term = undefined;
      for (const off of offs) await off();
    };
  }

  stop(): void {
    this.stopped = true;
  }

  /** In flight on each node, for the panel. */
  load(): Map<string, number> {
    return new Map([...this.perNode].map(([id, n]) => [id, n.inFlight]));
  }

  private async tick(): Promise<void> {
    if (this.waiting) this.pull();
    for (const id of [...this.j.resync]) {
      const t = this.j.book.get(id);
      if (t) await this.j.syncQueue(t);
      else this.j.resync.delete(id);
    }
    const unannounced = this.j.book.toAnnounce();
    if (unannounced.length) await this.j.announce(unannounced);
  }

  private dueCount(): number {
    const now = Date.now();
    let n = 0;
    for (const t of this.j.book.values()) if (t.status === STATUS.pending && (t.nextRunAt ?? 0) <= now) n++;
    return n;
  }

  private candidates(): Candidate[] {
    return this.j.ctx.nodes.list().map((n) => ({
      id: n.id,
      live: n.connected && n.state !== 'down',
      runsJobs: n.plugins.some((p) => p.name === 'jobs' && p.state === 'running'),
      labels: n.labels,
      inFlight: this.perNode.get(n.id)?.inFlight ?? 0,
      lastDispatchAt: this.perNode.get(n.id)?.lastDispatchAt ?? 0,
    }));
  }

  /**
   * Hands out what is due. One pass at a time (the queue's lease may answer asynchronously, and two
   * passes at once would both count the same free slots); a call during a pass asks for another.
   */
  pull(): void {
    const term = this.term;
    if (this.stopped || !term) return;
    if (this.pulling) {
      this.pullAgain = true;
      return;
    }
    this.pulling = true;
    void term.run(async () => {
      try {
        do {
          this.pullAgain = false;
          await this.pullOnce();
        } while (this.pullAgain && !this.stopped);
      } catch (err) {
        this.j.ctx.log.error({ err: (err as Error).message }, 'could not hand out due tasks; looking again on the next tick');
      } finally {
        this.pulling = false;
      }
    });
  }

  /** Leases what is due, as much as nodes have room for, and starts an attempt of each. */
  private async pullOnce(): Promise<void> {
    const policy = this.policy;
    const nodes = this.candidates();
    let room = 0;
    for (const n of nodes) if (eligible(n, policy)) room += Math.max(0, policy.concurrencyPerNode - n.inFlight);
    const now = Date.now();
    if (room === 0) {
      const next = await this.j.queue.nextDueAt();
      this.waiting = next !== undefined && next <= now ? whyWaiting(nodes, policy) : undefined;
      return;
    }
    this.waiting = undefined;
    const leased = await this.j.queue.lease(Math.min(room, PULL_MAX), FIRST_LEASE_MS);
    if (!leased.length || this.stopped) return;
    // Tasks created, cancelled or rerun through another controller up to now: a cancel committed
    // before this read is seen (the task is not sent), one after it is handled by remoteChanged.
    if (this.j.shared) await refreshLog(this.j.tasksLog);
    if (this.stopped) return;
    const started: Array<{ before: Task; task: Task; it: Leased<DueItem> }> = [];
    const ended: Transition[] = [];
    for (const it of leased) {
      let task = this.j.book.get(it.item.id);
      if (!task || isFinal(task)) {
        this.j.queue.ack(it.id).catch((err) => this.j.ctx.log.warn({ item: it.id, err: (err as Error).message }, 'could not drop a stale queue item'));
        continue;
      }
      const before = task;
      if (task.status === STATUS.running) {
        // The lease ran out and no outcome came: the node is gone or cut off.
        const a = task.attempts.at(-1)!;
        const tr = this.lost(task, a.n, `no outcome from node ${this.j.nodeName(a.node)} within the timeout and ${this.j.cfg.leaseGraceSec} s`);
        if (!tr) continue;
        task = tr.task;
        if (task.status !== STATUS.pending) {
          ended.push(tr);
          continue;
        }
      }
      const node = pickNode(nodes, policy)!;
      const s = startAttempt(task, node.id, now);
      node.inFlight++;
      node.lastDispatchAt = now;
      this.track(task.id, { node: node.id, n: s.attempt.n });
      this.renew(it, task.timeout + this.graceMs);
      this.lateness.observe({}, Math.max(0, now - it.dueAt) / 1000);
      started.push({ before, task: s.task, it });
    }
    if (ended.length) void this.commit(ended);
    if (started.length) {
      this.j.book.apply(started.map((s) => s.task));
      void this.launch(started);
    }
  }

  /** Writes the attempts, then sends them, batched per node. */
  private async launch(started: Array<{ before: Task; task: Task; it: Leased<DueItem> }>): Promise<void> {
    try {
      await this.j.book.persist(started.map((s) => s.task));
    } catch (err) {
      // Not recorded, so not sent: back as they were, looked at again in a few seconds.
      this.j.ctx.log.error({ err: (err as Error).message, tasks: started.length }, 'could not record attempts; retrying in 5 s');
      for (const s of started) {
        this.untrack(s.task.id, s.task.attempts.at(-1)!.n);
        if (this.j.book.get(s.task.id) === s.task) this.j.book.apply([s.before]);
        this.renew(s.it, 5000);
      }
      return;
    }
    const byNode = new Map<string, RunJobArgs[]>();
    for (const { task } of started) {
      // Cancelled while being written: nothing to send (the cancel closed it).
      if (this.j.book.get(task.id)?.status !== STATUS.running) continue;
      const a = task.attempts.at(-1)!;
      const app = this.j.apps.get(task.appKey);
      if (!app) continue;
      const list = byNode.get(a.node) ?? [];
      list.push({ taskId: task.id, n: a.n, linkUrl: app.linkUrl, content: task.content, timeoutMs: task.timeout, appKey: app.appKey, appName: app.appName, secretKey: app.secretKey.reveal() });
      byNode.set(a.node, list);
    }
    for (const [node, jobs] of byNode) for (const chunk of chunks(jobs)) void this.send(node, chunk);
  }

  private async send(node: string, jobs: RunJobArgs[]): Promise<void> {
    try {
      const r = await this.j.ctx.command(node, 'run', { jobs }, { timeoutMs: RUN_ACK_MS });
      for (const job of jobs) {
        const a = this.inFlight.get(job.taskId);
        if (a && a.n === job.n && a.node === node) a.boot = r.boot;
      }
    } catch (err) {
      if (this.stopped) return;
      const why = `node ${this.j.nodeName(node)} did not take the attempt: ${(err as Error).message}`;
      await this.commit(jobs.map((job) => this.lost(this.j.book.get(job.taskId), job.n, why)).filter((tr): tr is Transition => tr !== undefined));
    }
  }

  /** Outcomes a node reported (at least once: a repeated one changes nothing). */
  async onOutcomes(nodeId: string, outcomes: OutcomeReport[]): Promise<void> {
    const now = Date.now();
    const trs: Transition[] = [];
    for (const o of outcomes) {
      const task = this.j.book.get(o.taskId);
      const a = task?.attempts.find((x) => x.n === o.n);
      // Only the node that ran the attempt can say how it went.
      if (!task || !a || a.node !== nodeId) continue;
      this.untrack(task.id, o.n);
      this.latency.observe({ outcome: o.ok ? 'success' : 'failed' }, o.elapsedMs / 1000);
      const tr = finishAttempt(task, o.n, o, now);
      if (tr.task === task) continue;
      if (tr.task.status === STATUS.pending && task.status === STATUS.running) this.j.counters.retries.inc();
      // At once: a second outcome of the same task in this batch must see this one.
      this.j.book.apply([tr.task]);
      trs.push(tr);
    }
    // The slots are free now: hand out what is due while these outcomes are written.
    this.pull();
    await this.j.commit(trs);
  }

  /**
   * Another controller's records changed these tasks (`replaced`: the version each replaced). An
   * attempt dispatched here that they end (an outcome reported to the controller the node links
   * to) frees its slot. A cancel made there from a view without the attempt started here (the two
   * crossed within milliseconds) is completed here as on one controller: the attempt is aborted on
   * its node, and the cancel written again with the attempt, so every controller ends with it.
   */
  remoteChanged(replaced: Map<number, Task | undefined>): void {
    const redo: Transition[] = [];
    for (const [id, before] of replaced) {
      const a = this.inFlight.get(id);
      if (!a) continue;
      const task = this.j.book.get(id);
      const last = task?.attempts.at(-1);
      if (task && task.status === STATUS.running && last?.n === a.n && last.node === a.node) continue;
      this.untrack(id, a.n);
      const knewIt = task?.attempts.some((x) => x.n === a.n && x.node === a.node);
      if (task && task.status === STATUS.cancelled && !knewIt && before && before.status === STATUS.running) {
        // The canceller announced the task already.
        const tr = cancelTask(before, Date.now());
        redo.push({ ...tr, effects: tr.effects.filter((e) => e.kind !== 'finished') });
      }
    }
    if (redo.length) void this.commit(redo);
    else if (replaced.size) this.pull();
  }

  /** Callbacks that ended on a node (its best-effort message, ahead of the outcomes): their slots are free. */
  onEnded(nodeId: string, attempts: Array<{ taskId: number; n: number }>): void {
    for (const { taskId, n } of attempts) {
      const a = this.inFlight.get(taskId);
      if (!a || a.n !== n || a.node !== nodeId || a.ended) continue;
      a.ended = true;
      this.freeSlot(a.node);
    }
    this.pull();
  }

  /** The node's agent half (re)started: what an earlier incarnation was given will never report. */
  async onStarted(nodeId: string, boot: string): Promise<void> {
    const gone: Transition[] = [];
    for (const [taskId, a] of this.inFlight) {
      if (a.node !== nodeId || a.boot === undefined || a.boot === boot) continue;
      const tr = this.lost(this.j.book.get(taskId), a.n, `node ${this.j.nodeName(nodeId)} restarted during the attempt`);
      if (tr) gone.push(tr);
    }
    await this.commit(gone);
  }

  private loseNode(node: NodeInfo): void {
    const gone: Transition[] = [];
    for (const [taskId, a] of this.inFlight) {
      // An attempt that ended has its outcome in the node's outbox: it comes when the node does (or the lease runs out).
      if (a.node !== node.id || a.ended) continue;
      const tr = this.lost(this.j.book.get(taskId), a.n, `node ${node.name} went down during the attempt`);
      if (tr) gone.push(tr);
    }
    void this.commit(gone);
  }

  /** Not awaited: the item is leased for an hour already, the renewal only shortens it to the attempt's deadline. */
  private renew(it: Leased<DueItem>, ms: number): void {
    Promise.resolve()
      .then(() => this.j.queue.renew(it.id, it.token, ms))
      .catch((err: unknown) => this.j.ctx.log.warn({ item: it.id, err: (err as Error).message }, 'could not renew a lease'));
  }

  /** Closes attempt n as lost (in memory); the task is pending again unless it was lost too often. Undefined: nothing to close. */
  private lost(task: Task | undefined, n: number, reason: string): Transition | undefined {
    if (!task) return undefined;
    this.untrack(task.id, n);
    const tr = loseAttempt(task, n, reason, Date.now());
    if (tr.task === task) return undefined;
    this.j.counters.lost.inc();
    this.j.book.apply([tr.task]);
    return tr;
  }

  private async commit(trs: Transition[]): Promise<void> {
    try {
      await this.j.commit(trs);
    } catch (err) {
      this.j.ctx.log.error({ err: (err as Error).message, tasks: trs.length }, 'could not record lost attempts');
    }
    this.pull();
  }

  private track(taskId: number, a: Attempting): void {
    this.untrack(taskId);
    this.inFlight.set(taskId, a);
    const n = this.perNode.get(a.node) ?? { inFlight: 0, lastDispatchAt: 0 };
    n.inFlight++;
    n.lastDispatchAt = Date.now();
    this.perNode.set(a.node, n);
  }

  /** Frees the node's slot of the task's attempt (attempt n only, when given). */
  private untrack(taskId: number, n?: number): void {
    const a = this.inFlight.get(taskId);
    if (!a || (n !== undefined && a.n !== n)) return;
    this.inFlight.delete(taskId);
    if (!a.ended) this.freeSlot(a.node);
  }

  private freeSlot(node: string): void {
    const p = this.perNode.get(node);
    if (p) p.inFlight = Math.max(0, p.inFlight - 1);
  }
}

/** Jobs in commands of at most RUN_MAX_JOBS and about RUN_MAX_BYTES of content (one job always fits). */
function* chunks(jobs: RunJobArgs[]): Iterable<RunJobArgs[]> {
  let chunk: RunJobArgs[] = [];
  let bytes = 0;
  for (const job of jobs) {
    if (chunk.length && (chunk.length >= RUN_MAX_JOBS || bytes + job.content.length > RUN_MAX_BYTES)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(job);
    bytes += job.content.length;
  }
  if (chunk.length) yield chunk;
}
