/**
 * The controller's jobs state and the one way it changes: a transition is applied in memory, written
 * to the task log, announced when the task finished, and then the due-time queue is made to match.
 * api.ts, rest.ts, panel.ts and dispatcher.ts read and change tasks through this.
 */
import { onRemoteAppend, refreshLog, StorageConflictError, z, type ControllerContext, type DueQueue, type DurableLog } from '../sdk/index.ts';
import { AppBook, appRecord } from './app-book.ts';
import type { JobsConfig } from './config.ts';
import { LogNonceStore, NonceTakenError, type NonceClaim } from './nonce-store.ts';
import { FailureLimiter } from './rate-limit.ts';
import { formatIso } from './runtime.ts';
import type { Spec } from './spec.ts';
import { isFinal, TaskBook, taskRecord, type TaskRecord } from './task-book.ts';
import { STATUS, STATUS_NAME, cancelTask, createTask, rerunTask, taskDetail, type Task, type TaskDetail, type Transition } from './task.ts';
import type { TaskCreate } from './validate.ts';
import { RequestVerifier } from './verify.ts';
import type { Application } from './application.ts';

export const dueItem = z.object({ id: z.number().int().positive() });
export type DueItem = z.infer<typeof dueItem>;

/** Queue ids are the task ids as text: one item per task at most. */
export const queueId = (taskId: number): string => String(taskId);

/** A due time that differs from the task's by less than this is the same (the queue stamps its own clock). */
const SAME_DUE_MS = 5;
/** An exclusive write refused this many times in a row (others appending without pause) gives up: 503-like. */
const EXCLUSIVE_TRIES = 20;

export class Jobs {
  apps!: AppBook;
  book!: TaskBook;
  queue!: DueQueue<DueItem>;
  nonces!: LogNonceStore;
  verifier!: RequestVerifier<Application>;
  /** The task log: shared with other controllers when `shared`. */
  tasksLog!: DurableLog<TaskRecord>;
  /**
   * Other controllers append to the task log (a database shared by controllers): task ids and taskNos,
   * and nonces, are then claimed with exclusive appends, so two controllers never hand out one id or
   * accept one nonce twice.
   */
  shared = false;
  /** Told of tasks other controllers' records changed (the dispatcher on the lease holder). */
  onRemoteTasks: (replaced: Map<number, Task | undefined>) => void = () => undefined;
  /** Tasks whose queue item could not be written (disk full): tried again by the dispatcher's tick. */
  readonly resync = new Set<number>();
  readonly counters;

  constructor(readonly ctx: ControllerContext<Spec>) {
    this.counters = {
      finished: ctx.metrics.counter('outpost_jobs_finished_total', 'Tasks that finished, by state (success, cancelled, failed).'),
      retries: ctx.metrics.counter('outpost_jobs_retries_total', 'Failed attempts followed by another attempt step seconds later.'),
      lost: ctx.metrics.counter('outpost_jobs_attempts_lost_total', 'Attempts given up on because their node went away or never reported (the task is handed to another node).'),
      refused: ctx.metrics.counter('outpost_jobs_requests_refused_total', 'Signed requests refused before any effect, by HTTP status (401 signature, 429 rate limited).'),
    };
  }

  get cfg(): JobsConfig {
    return this.ctx.config;
  }

  async open(): Promise<void> {
    const durable = { fsync: this.cfg.fsync } as const;
    this.apps = await AppBook.open((load, snapshot) => this.ctx.openLog('apps', appRecord, { load, snapshot, fsync: 'always' }));
    // Tasks and nonces share one log: a create's nonce and task are one write (a refused request keeps neither).
    const book = (this.book = new TaskBook());
    const nonces = (this.nonces = new LogNonceStore());
    const log = await this.ctx.openLog('tasks', taskRecord, {
      load: (r) => (r.k === 'o' ? nonces.load(r) : book.load(r)),
      snapshot: function* () {
        yield* book.snapshot();
        for (const n of nonces.live()) yield { k: 'o' as const, ...n };
      },
      ...durable,
      compactAfterBytes: 32 * 1024 * 1024,
    });
    book.loaded(log);
    this.tasksLog = log;
    this.shared = log.refresh !== undefined;
    onRemoteAppend(log, () => this.onRemoteTasks(book.takeReplaced()));
    nonces.attach((records) => this.exclusively(() => log.append(records.map((n) => ({ k: 'o' as const, ...n })), this.appendOpts), () => records.some((r) => nonces.taken(r))));
    this.queue = await this.ctx.openQueue('due', dueItem, { ...durable, compactAfterBytes: 16 * 1024 * 1024 });
    const cfg = this.cfg;
    this.verifier = new RequestVerifier({
      findApp: (k) => this.apps.get(k),
      nonces: this.nonces,
      limiter: new FailureLimiter(),
      windowSec: cfg.windowSec,
      nonceRetentionSec: cfg.nonceRetentionSec,
      // Read at each request: a config pushed live applies to the next one.
      get perAppIp() {
        return cfg.rateLimit.perAppIp;
      },
      get perIp() {
        return cfg.rateLimit.perIp;
      },
    });
  }

  nodeName(id: string): string {
    return this.ctx.nodes.get(id)?.name ?? id;
  }

  detail(task: Task): TaskDetail {
    return taskDetail(task, this.cfg.timezone, (id) => this.nodeName(id));
  }

  /**
   * A new task for the app, written with the nonce of the request that created it (one append: both
   * or neither); resolves with it once it is on disk and scheduled.
   */
  async createTask(app: Application, input: TaskCreate, claim: NonceClaim): Promise<Task> {
    if (this.shared) return this.createShared(app, input, claim);
    const id = this.book.claim(app.appKey, input.taskNo);
    const { task } = createTask(id, app.appKey, input, { step: app.step, retryTotal: app.retryTotal }, Date.now());
    // The task and its queue item in one turn (the queue only indexes the task log: a failed queue
    // write is retried by the tick; a failed task write takes its queue item back).
    const [added] = await Promise.allSettled([this.nonces.commitWith(claim, (nonce) => this.book.add(task, nonce)), this.syncQueue(task)]);
    if (added.status === 'rejected') {
      await this.queue.cancel(queueId(task.id)).catch(() => this.resync.add(task.id));
      throw added.reason;
    }
    return task;
  }

  /**
   * createTask with other controllers appending too: the id and taskNo are claimed from memory that
   * holds the whole log, and written only if it still does (exclusive); otherwise taken in and
   * claimed again (the taskNo may be taken now). The queue item follows the task: its id is the
   * task's, which is only known to be this task's once written.
   */
  private async createShared(app: Application, input: TaskCreate, claim: NonceClaim): Promise<Task> {
    let task!: Task;
    await this.exclusively(async () => {
      const id = this.book.claim(app.appKey, input.taskNo);
      task = createTask(id, app.appKey, input, { step: app.step, retryTotal: app.retryTotal }, Date.now()).task;
      await this.nonces.commitWith(claim, (nonce) => this.book.add(task, nonce, { exclusive: true }));
    });
    await this.syncQueue(task);
    return task;
  }

  private get appendOpts() {
    return this.shared ? { exclusive: true } : undefined;
  }

  /** Runs an exclusive write again after taking in what another controller appended first; `taken`: a nonce it carries was accepted there. */
  private async exclusively(write: () => Promise<void>, taken: () => boolean = () => false): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (!(err instanceof StorageConflictError) || attempt >= EXCLUSIVE_TRIES) throw err;
        await refreshLog(this.tasksLog);
        if (taken()) throw new NonceTakenError();
      }
    }
  }

  /** /task/cancel: pending never runs, running is aborted on its node; a finished task throws (code 1). */
  cancel(task: Task, beforeWrite?: () => Promise<void>): Promise<Task> {
    return this.change(task, cancelTask, beforeWrite);
  }

  /** /nsq/publish: a finished task runs again at its runtime (now if past); pending or running throws. */
  rerun(task: Task, beforeWrite?: () => Promise<void>): Promise<Task> {
    return this.change(task, rerunTask, beforeWrite);
  }

  /**
   * Checks the change first (a refused one writes nothing, the signed request's nonce included), then
   * makes it from the task as it is after beforeWrite: an outcome may have arrived meanwhile.
   */
  private async change(task: Task, transition: (t: Task, now: number) => Transition, beforeWrite: () => Promise<void> = async () => {}): Promise<Task> {
    transition(task, Date.now());
    await beforeWrite();
    // The task as the lease holder last wrote it (a cancel must see an attempt it started just now).
    if (this.shared) await refreshLog(this.tasksLog);
    const tr = transition(this.book.get(task.id) ?? task, Date.now());
    await this.commit([tr]);
    return tr.task;
  }

  /** Where the node:http listener for `app_key` clients is bound, when configured. */
  listening: { host: string; port: number } | undefined;

  /** Why due tasks wait for a node (set by the dispatcher), for detail and the panel. */
  waitingReason: () => string | undefined = () => undefined;

  /** data.task of /task/detail, with why it waits when it is due and no node can take it. */
  view(task: Task): TaskDetail & { waiting?: string } {
    const d = this.detail(task);
    const waiting = task.status === STATUS.pending && (task.nextRunAt ?? 0) <= Date.now() ? this.waitingReason() : undefined;
    return waiting ? { ...d, waiting } : d;
  }

  /**
   * Applies transitions (memory at once, so whatever runs next sees them), writes them, aborts attempts
   * the transitions end, makes the queue match each task and announces the tasks that finished.
   * Resolves once the tasks and the queue are on disk (the announcement follows on its own).
   */
  async commit(trs: Transition[]): Promise<void> {
    if (!trs.length) return;
    const changed = trs.map((tr) => tr.task);
    const finished = trs.filter((tr) => tr.effects.some((e) => e.kind === 'finished')).map((tr) => tr.task);
    this.book.apply(changed);
    for (const tr of trs) for (const e of tr.effects) if (e.kind === 'abort') this.abort(tr.task.id, e.node, e.n);
    await this.book.persist(changed, finished.map((t) => t.id));
    // Not awaited: the task log now says these are to be announced, so a crash before the event is
    // recorded announces them at the next start, and a failed write is retried by the tick.
    void this.announce(finished);
    await Promise.all(changed.map((t) => this.syncQueue(t)));
  }

  /** jobs.task.finished for each task (durable in the event log), then marked announced in the task log. */
  async announce(finished: Task[]): Promise<void> {
    // The tick retries what is still unannounced: not what a commit is announcing right now.
    const tasks = finished.filter((t) => !this.announcing.has(t.id));
    if (!tasks.length) return;
    for (const t of tasks) this.announcing.add(t.id);
    try {
      await Promise.all(tasks.map((t) => this.ctx.events.emit('jobs.task.finished', this.finishedEvent(t))));
      for (const t of tasks) this.counters.finished.inc({ state: STATUS_NAME[t.status] });
      await this.book.announced(tasks.map((t) => t.id));
    } catch (err) {
      // Still unannounced in the log: the tick (and the next start) tries again.
      this.ctx.log.error({ err: (err as Error).message, tasks: tasks.length }, 'could not record jobs.task.finished; retrying');
    } finally {
      for (const t of tasks) this.announcing.delete(t.id);
    }
  }

  private readonly announcing = new Set<number>();

  private finishedEvent(t: Task) {
    const d = this.detail(t);
    const status = t.status as 2 | 3 | 4;
    return {
      id: t.id,
      taskNo: t.taskNo,
      name: t.name,
      appKey: t.appKey,
      appName: this.apps.get(t.appKey)?.appName ?? '',
      status,
      state: STATUS_NAME[status] as 'success' | 'cancelled' | 'failed',
      runtime: d.runtime,
      attempts: d.attempts.slice(t.runFrom),
      error: t.error,
      finishedAt: formatIso(t.finishedAt ?? t.updatedAt, this.cfg.timezone),
    };
  }

  /**
   * Makes the queue hold what the task needs: a pending task an item due at nextRunAt (a leased one is
   * released to that time), a finished task none. A running task's item stays leased to its attempt.
   * A write that fails leaves the task in `resync`, tried again by the dispatcher's tick.
   */
  async syncQueue(task: Task, opts: { keepMatching?: boolean } = {}): Promise<void> {
    const key = queueId(task.id);
    try {
      const item = await this.queue.get(key);
      if (task.status === STATUS.pending) {
        const at = task.nextRunAt ?? Date.now();
        if (!item) await this.queue.schedule({ id: task.id }, at, { id: key });
        else if (!opts.keepMatching || Math.abs(item.dueAt - at) > SAME_DUE_MS) await this.queue.fail(key, at - Date.now());
      } else if (isFinal(task) && item) {
        await this.queue.ack(key);
      }
      this.resync.delete(task.id);
    } catch (err) {
      this.resync.add(task.id);
      this.ctx.log.error({ task: task.id, err: (err as Error).message }, 'could not update the due-time queue; retrying');
    }
  }

  private abort(taskId: number, node: string, n: number): void {
    this.ctx.command(node, 'abort', { taskId, n }, { timeoutMs: 5000 }).catch((err) => this.ctx.log.warn({ task: taskId, attempt: n, node: this.nodeName(node), err: (err as Error).message }, 'could not abort the attempt on its node'));
  }
}
