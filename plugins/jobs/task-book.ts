/**
 * Every task, in memory and in the SDK's durable log: a full record when a task is created, its
 * changing fields on every transition (the content is written once), and the next id in snapshots so
 * ids are never handed out twice. The log is the truth; the due-time queue only says when to look.
 * The log also holds the signed requests' nonces (kind `o`, nonce-store.ts), so a task and the nonce
 * of the request that created it are one write.
 */
import { z, type AppendOptions, type DurableLog } from '../sdk/index.ts';
import { JobsError } from './envelope.ts';
import { nonceRecord, type NonceRecord } from './nonce-store.ts';
import { STATUS, type Status, type Task } from './task.ts';

const int = z.number().int();
const status = z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3), z.literal(4)]);
const attempt = z.object({
  n: int,
  node: z.string(),
  startedAt: z.number(),
  elapsedMs: z.number().nullable(),
  statusCode: int.nullable(),
  error: z.string().nullable(),
  lost: z.literal(true).optional(),
});
/** What changes after creation. */
const progress = {
  status,
  attempts: z.array(attempt),
  nextRunAt: z.number().nullable(),
  runFrom: int,
  error: z.string().nullable(),
  updatedAt: z.number(),
  finishedAt: z.number().nullable(),
};
const taskSchema = z.object({ id: int, appKey: z.string(), taskNo: z.string(), name: z.string(), content: z.string(), timeout: int, runtime: z.number(), step: int, retryTotal: int, createdAt: z.number(), ...progress });

/** `ann`: the task finished and jobs.task.finished is not known to be recorded yet; `a` lists tasks whose event is. */
const toAnnounce = z.literal(true).optional();
export const taskRecord = z.discriminatedUnion('k', [
  z.object({ k: z.literal('t'), task: taskSchema, ann: toAnnounce }),
  z.object({ k: z.literal('u'), id: int, ...progress, ann: toAnnounce }),
  z.object({ k: z.literal('a'), ids: z.array(int) }),
  z.object({ k: z.literal('n'), next: int }),
  nonceRecord.extend({ k: z.literal('o') }),
]);
export type TaskRecord = z.infer<typeof taskRecord>;
export type NonceEntry = Extract<TaskRecord, { k: 'o' }>;

const FINAL = new Set<Status>([STATUS.success, STATUS.cancelled, STATUS.failed]);
export const isFinal = (t: Task): boolean => FINAL.has(t.status);

const noKey = (appKey: string, taskNo: string) => `${appKey}\n${taskNo}`;

export class TaskBook {
  private readonly tasks = new Map<number, Task>();
  /** (appKey, taskNo) → id, including creates still being written: a second one of them loses. */
  private readonly byNo = new Map<string, number>();
  private next = 1;
  /** Finished tasks whose jobs.task.finished is not known to be in the event log yet. */
  private readonly unannounced = new Set<number>();
  /** Tasks by status, kept as they change (a gauge reads them at every scrape). */
  readonly counts: Record<Status, number> = { 0: 0, 1: 0, 2: 0, 3: 0, 4: 0 };
  private log!: DurableLog<TaskRecord>;

  /** Tasks read back from the log, applied at once by loaded(). */
  private readonly loading = new Map<number, Task>();
  /**
   * Tasks as they were before records of another controller (sharing the database) replaced them,
   * for the owner to react to (takeReplaced).
   */
  private replaced = new Map<number, Task | undefined>();

  /** A record read back from the log (not a nonce: those go to the nonce store). */
  load(r: Exclude<TaskRecord, NonceEntry>): void {
    if (this.log) return this.loadRemote(r);
    if (r.k === 'n') this.next = Math.max(this.next, r.next);
    else if (r.k === 'a') for (const id of r.ids) this.unannounced.delete(id);
    else if (r.k === 't') {
      this.loading.set(r.task.id, r.task);
      this.next = Math.max(this.next, r.task.id + 1);
      if (r.ann) this.unannounced.add(r.task.id);
    } else {
      const t = this.loading.get(r.id);
      if (t) this.loading.set(r.id, { ...t, ...progressOf(r) });
      if (r.ann) this.unannounced.add(r.id);
    }
  }

  /**
   * Another controller's record, once this one runs: applied at once. Its `ann` is not taken up: the
   * controller that finished the task announces it (a second announcement would be a second event).
   */
  private loadRemote(r: Exclude<TaskRecord, NonceEntry>): void {
    if (r.k === 'n') this.next = Math.max(this.next, r.next);
    else if (r.k === 'a') for (const id of r.ids) this.unannounced.delete(id);
    else if (r.k === 't') {
      this.next = Math.max(this.next, r.task.id + 1);
      if (!this.replaced.has(r.task.id)) this.replaced.set(r.task.id, this.tasks.get(r.task.id));
      this.put(r.task);
    } else {
      const t = this.tasks.get(r.id);
      if (!t) return;
      if (!this.replaced.has(r.id)) this.replaced.set(r.id, t);
      this.put({ ...t, ...progressOf(r) });
    }
  }

  /** Tasks other controllers' records changed since the last call, with the version each replaced (undefined: new here). */
  takeReplaced(): Map<number, Task | undefined> {
    const r = this.replaced;
    this.replaced = new Map();
    return r;
  }

  /** The log is read: the tasks go live, and later writes go to it. */
  loaded(log: DurableLog<TaskRecord>): void {
    for (const t of this.loading.values()) this.put(t);
    this.loading.clear();
    this.log = log;
  }

  get(id: number): Task | undefined {
    return this.tasks.get(id);
  }

  values(): IterableIterator<Task> {
    return this.tasks.values();
  }

  get size(): number {
    return this.tasks.size;
  }

  /**
   * Takes the taskNo for the app and an id, synchronously: of concurrent creates with one taskNo,
   * exactly one gets here first. Undo with release() if the task is not written after all.
   */
  claim(appKey: string, taskNo: string): number {
    const k = noKey(appKey, taskNo);
    if (this.byNo.has(k)) throw new JobsError(`taskNo: "${taskNo}" already exists for this application (请勿重复提交!)`);
    const id = this.next++;
    this.byNo.set(k, id);
    return id;
  }

  /** `id`: only if the taskNo is still this id's (another controller's task may hold it since). */
  release(appKey: string, taskNo: string, id?: number): void {
    const k = noKey(appKey, taskNo);
    if (id === undefined || this.byNo.get(k) === id) this.byNo.delete(k);
  }

  /**
   * Stores a new task, with the nonce of the request that created it; resolves once both are on disk.
   * `exclusive` (controllers sharing the log): only if no other controller appended since this one
   * took in the log, so that its id and taskNo are known to be free (StorageConflictError otherwise).
   */
  async add(task: Task, nonce?: NonceRecord, opts?: AppendOptions): Promise<void> {
    this.put(task);
    try {
      await this.log.append(nonce ? [{ k: 'o', ...nonce }, { k: 't', task }] : [{ k: 't', task }], opts);
    } catch (err) {
      this.remove(task);
      this.release(task.appKey, task.taskNo, task.id);
      throw err;
    }
  }

  /** Replaces tasks by their new versions in memory: call before persist(), so whatever runs meanwhile sees them. */
  apply(tasks: Task[]): void {
    for (const t of tasks) this.put(t);
  }

  /** Writes the tasks' current progress; `finished` are to be announced (until announced() says they were). */
  async persist(tasks: Task[], finished: number[] = []): Promise<void> {
    if (!tasks.length) return;
    const ann = new Set(finished);
    for (const id of ann) this.unannounced.add(id);
    await this.log.append(tasks.map((t) => ({ k: 'u', id: t.id, status: t.status, attempts: t.attempts, nextRunAt: t.nextRunAt, runFrom: t.runFrom, error: t.error, updatedAt: t.updatedAt, finishedAt: t.finishedAt, ...(ann.has(t.id) ? { ann: true as const } : {}) })));
  }

  /** Their jobs.task.finished is in the event log. */
  async announced(ids: number[]): Promise<void> {
    for (const id of ids) this.unannounced.delete(id);
    await this.log.append([{ k: 'a', ids }]);
  }

  /** Finished tasks still to be announced (after a crash between the task's write and its event, or a failed event write). */
  toAnnounce(): Task[] {
    return [...this.unannounced].map((id) => this.tasks.get(id)).filter((t): t is Task => t !== undefined);
  }

  /** The newest tasks first (ids grow with creation), optionally only those passing `keep`. */
  recent(limit: number, keep: (t: Task) => boolean = () => true): Task[] {
    const out: Task[] = [];
    for (let id = this.next - 1; id > 0 && out.length < limit; id--) {
      const t = this.tasks.get(id);
      if (t && keep(t)) out.push(t);
    }
    return out;
  }

  /** Forgets finished tasks that ended before `before`; the next compaction leaves them out of the files. */
  prune(before: number): number {
    let n = 0;
    for (const t of this.tasks.values()) {
      if (isFinal(t) && (t.finishedAt ?? t.updatedAt) < before) {
        this.remove(t);
        this.release(t.appKey, t.taskNo);
        this.unannounced.delete(t.id);
        n++;
      }
    }
    return n;
  }

  close(): Promise<void> {
    return this.log.close();
  }

  private put(t: Task): void {
    const before = this.tasks.get(t.id);
    if (before) this.counts[before.status]--;
    this.counts[t.status]++;
    this.tasks.set(t.id, t);
    this.byNo.set(noKey(t.appKey, t.taskNo), t.id);
  }

  private remove(t: Task): void {
    if (this.tasks.get(t.id) !== t) return;
    this.counts[t.status]--;
    this.tasks.delete(t.id);
  }

  *snapshot(): Iterable<TaskRecord> {
    yield { k: 'n', next: this.next };
    for (const task of this.tasks.values()) yield this.unannounced.has(task.id) ? { k: 't', task, ann: true } : { k: 't', task };
  }
}

function progressOf(r: Extract<TaskRecord, { k: 'u' }>): Omit<Extract<TaskRecord, { k: 'u' }>, 'k' | 'id' | 'ann'> {
  const { k: _k, id: _id, ann: _ann, ...rest } = r;
  return rest;
}
