/**
 * The due-time queue on PostgreSQL: one row per item in `outpost_queue_items`, with its due time,
 * lease (expiry, owner, token) and lane. Several processes can share a queue: lease() picks due lane
 * heads with FOR UPDATE SKIP LOCKED, so two of them never get the same item, and the lease is a row
 * update, so it holds across processes until it runs out.
 *
 * Lanes (items sharing a key, one at a time in schedule order) are kept with a `head` flag on the
 * first item of each lane: lease() and nextDueAt() then only look at heads (one index), and removing
 * a head hands the flag to the next item. Changes to a lane take an advisory lock on (queue, key),
 * so a schedule and an ack racing in one lane cannot leave it without a head.
 *
 * A process's leases are freed when it opens the queue again (a restarted controller; its owner name
 * is stable), as the file queue forgets its leases at a restart.
 *
 * The checkpoint (scheduleMany's `checkpoint`) is a column of the queue's row, updated in the batch's
 * transaction, and held in memory from open on: it has one writer (the queue's owner in this process).
 * `sync: false` changes nothing here: a commit is durable once PostgreSQL answers.
 */
import { z } from 'zod';
import { checkCheckpoint, checkDueAt, checkSchedule, type DueQueue, type Leased, type QueueContents, type QueuedItem, type QueueOptions, type ScheduleOptions } from '../../../plugins/sdk/durable/queue.ts';
import { schemaProblem } from '../../../plugins/sdk/durable/log-policy.ts';
import { GroupCommit } from '../../../plugins/sdk/durable/group-commit.ts';
import { parseRecordJson } from '../../../plugins/sdk/durable/record-json.ts';
import { fenceKey, fenceOrThrow, StaleLeaseError, type Fence } from '../../../plugins/sdk/durable/fence.ts';
import type { PgContext } from './context.ts';
import { validFences } from './fence-check.ts';

/** How often a queue with listeners looks for items made due by other processes (or leases that ran out there). */
const DEFAULT_POLL_MS = 1000;

type Entry<T> = { item: T; dueAt: number } & ScheduleOptions;
interface Job<T> {
  list: Array<Entry<T>>;
  ids: string[];
  /** Stored with the batch when higher than the one stored. */
  checkpoint?: number;
  /** Singleton work's schedule: refused alone (stale) when its lease moved on. */
  fence?: Fence;
  stale?: boolean;
}

/** The pool, or a connection inside a transaction. */
type Runner = Pick<PgContext['db'], 'query'>;

interface Removal {
  id: string;
  token: number | null;
  /** Set once written: whether the item was there (and, with a token, still under that lease). */
  done: boolean;
  fence?: Fence;
  stale?: boolean;
}

interface Row {
  id: string;
  seq: number;
  key: string | null;
  due_at: number;
  attempts: number;
  last_error: string | null;
  created_at: number;
  item: string;
  token: number;
  leased_until: number;
}

const COLUMNS = 'id, seq, key, due_at, attempts, last_error, created_at, item, token, leased_until';

const LEASE = `
WITH c AS (
  SELECT queue, id, ready_at FROM outpost_queue_items
  WHERE queue = $1 AND head AND ready_at <= $2
  ORDER BY ready_at, seq LIMIT $3
  FOR UPDATE SKIP LOCKED
)
UPDATE outpost_queue_items i SET leased_until = $4, token = i.token + 1, lease_owner = $5
FROM c WHERE i.queue = c.queue AND i.id = c.id
RETURNING c.ready_at AS ready, ${COLUMNS.split(', ').map((c) => `i.${c}`).join(', ')}`;

/**
 * Deletes the items named, those given with a token only while that token holds. The ids go in as
 * `= ANY` so the primary key drives it: joined to an unnest instead, the planner may scan the whole
 * queue once per id (it did, on a freshly filled table).
 */
const REMOVE = `
DELETE FROM outpost_queue_items WHERE queue = $1 AND id = ANY($2::text[])
  AND (id = ANY($3::text[]) OR (id, token) IN (SELECT * FROM unnest($4::text[], $5::integer[])))`;

function removeParams(queue: string, reqs: Removal[]): unknown[] {
  const withToken = reqs.filter((r) => r.token !== null);
  return [queue, reqs.map((r) => r.id), reqs.filter((r) => r.token === null).map((r) => r.id), withToken.map((r) => r.id), withToken.map((r) => r.token)];
}

/** The first remaining item of each given lane becomes its head. */
const PROMOTE = `
UPDATE outpost_queue_items SET head = true WHERE queue = $1 AND id IN (
  SELECT DISTINCT ON (key) id FROM outpost_queue_items WHERE queue = $1 AND key = ANY($2::text[]) ORDER BY key, seq
)`;

export class PgQueue<T> implements DueQueue<T> {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private armQueued = false;
  /** The due time listeners were last told about, so a consumer without room is not told again at once. */
  private told: number | undefined;
  private closed = false;
  private cp = 0;
  /** The term (fenceKey) for which leases of other controllers were last taken back. */
  private reclaimed: string | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly schedules = new GroupCommit<Job<T>>((jobs) => this.insert(jobs));
  private readonly removals = new GroupCommit<Removal>((reqs) => this.removeMany(reqs));

  private constructor(
    private readonly ctx: PgContext,
    readonly name: string,
    private readonly itemSchema: z.ZodType<T>,
    private readonly pollMs: number,
  ) {}

  static async open<T>(ctx: PgContext, name: string, itemSchema: z.ZodType<T>, opts: QueueOptions & { pollMs?: number }): Promise<PgQueue<T>> {
    const q = new PgQueue(ctx, name, itemSchema, opts.pollMs ?? DEFAULT_POLL_MS);
    try {
      await ctx.db.query('INSERT INTO outpost_queues (name) VALUES ($1) ON CONFLICT DO NOTHING', [name]);
      q.cp = (await ctx.db.query<{ checkpoint: number }>('SELECT checkpoint FROM outpost_queues WHERE name = $1', [name])).rows[0].checkpoint;
      // Leases this controller held before it stopped: nobody is working on those items any more.
      await ctx.db.query('UPDATE outpost_queue_items SET leased_until = 0, lease_owner = NULL WHERE queue = $1 AND lease_owner = $2', [name, ctx.owner]);
    } catch (err) {
      throw ctx.failed(`queue ${name}`, err);
    }
    return q;
  }

  // ---- API ----

  schedule(item: T, dueAt: number, opts: ScheduleOptions = {}): Promise<string> {
    return this.scheduleMany([{ item, dueAt, ...opts }]).then((ids) => ids[0]);
  }

  async scheduleMany(list: Array<Entry<T>>, opts: { checkpoint?: number; sync?: boolean } = {}): Promise<string[]> {
    if (this.closed) throw new Error('queue is closed');
    checkCheckpoint(opts.checkpoint);
    for (const s of list) {
      checkSchedule(s);
      const check = this.itemSchema.safeParse(s.item);
      if (!check.success) throw new Error(`queue ${this.name}: record does not match its schema: ${schemaProblem(check.error.issues, 'item')}`);
    }
    const fence = fenceOrThrow(`schedule in queue ${this.name}`);
    const job: Job<T> = { list, ids: [], ...(opts.checkpoint !== undefined && opts.checkpoint > this.cp ? { checkpoint: opts.checkpoint } : {}), ...(fence ? { fence } : {}) };
    if (list.length > 0 || job.checkpoint !== undefined) await this.track(this.schedules.add([job]));
    if (job.stale) throw new StaleLeaseError(fence!, `schedule in queue ${this.name}`);
    this.requestArm();
    return job.ids;
  }

  cancel(id: string): Promise<boolean> {
    return this.remove(id, undefined);
  }

  async lease(n: number, ms: number): Promise<Leased<T>[]> {
    if (this.closed || n <= 0) return [];
    const now = Date.now();
    const r = await this.op(() =>
      this.fenced('lease', async (run, fence) => {
        // Singleton work runs for one term at a time, and an earlier term's work is over before a new
        // one starts: leases still held are an earlier term's (a holder that died, was cut off, or let
        // them go), and their items would otherwise wait out those leases.
        if (fence && this.reclaimed !== fenceKey(fence)) {
          await run.query('UPDATE outpost_queue_items SET leased_until = 0, lease_owner = NULL WHERE queue = $1 AND leased_until > 0', [this.name]);
          this.reclaimed = fenceKey(fence);
        }
        return run.query<Row & { ready: number }>(LEASE, [this.name, now, Math.floor(n), now + ms, this.ctx.owner]);
      }),
    );
    this.requestArm();
    return r.rows.sort((a, b) => a.ready - b.ready || a.seq - b.seq).map((row) => ({ ...this.view(row), token: row.token, leasedUntil: row.leased_until }));
  }

  async renew(id: string, token: number, ms: number): Promise<boolean> {
    const r = await this.op(() => this.fenced('renew', (run) => run.query('UPDATE outpost_queue_items SET leased_until = $4 WHERE queue = $1 AND id = $2 AND token = $3 AND leased_until > 0', [this.name, id, token, Date.now() + ms])));
    this.requestArm();
    return r.rowCount === 1;
  }

  ack(id: string, token?: number): Promise<boolean> {
    return this.remove(id, token);
  }

  async fail(id: string, backoffMs: number, opts: { token?: number; error?: string } = {}): Promise<boolean> {
    const r = await this.op(() =>
      this.fenced('fail', (run) =>
        run.query(
          `UPDATE outpost_queue_items SET leased_until = 0, lease_owner = NULL, attempts = attempts + 1, due_at = $4, last_error = $5
           WHERE queue = $1 AND id = $2 AND ($3::integer IS NULL OR token = $3)`,
          [this.name, id, opts.token ?? null, Date.now() + Math.max(0, backoffMs), opts.error?.slice(0, 1000) ?? null],
        ),
      ),
    );
    this.requestArm();
    return r.rowCount === 1;
  }

  async reschedule(id: string, dueAt: number): Promise<boolean> {
    checkDueAt(dueAt);
    const r = await this.op(() => this.fenced('reschedule', (run) => run.query('UPDATE outpost_queue_items SET due_at = $3 WHERE queue = $1 AND id = $2 AND leased_until = 0', [this.name, id, dueAt])));
    this.requestArm();
    return r.rowCount === 1;
  }

  checkpoint(): number {
    return this.cp;
  }

  async items(): Promise<QueuedItem<T>[]> {
    const r = await this.op(() => this.ctx.db.query<Row>(`SELECT ${COLUMNS} FROM outpost_queue_items WHERE queue = $1 ORDER BY seq`, [this.name]));
    return r.rows.map((row) => this.view(row));
  }

  async get(id: string): Promise<QueuedItem<T> | undefined> {
    const r = await this.op(() => this.ctx.db.query<Row>(`SELECT ${COLUMNS} FROM outpost_queue_items WHERE queue = $1 AND id = $2`, [this.name, id]));
    return r.rows[0] && this.view(r.rows[0]);
  }

  async counts(): Promise<{ pending: number; leased: number }> {
    const r = await this.op(() => this.ctx.db.query<{ total: number; leased: number }>('SELECT count(*) AS total, count(*) FILTER (WHERE leased_until > 0) AS leased FROM outpost_queue_items WHERE queue = $1', [this.name]));
    return { pending: r.rows[0].total - r.rows[0].leased, leased: r.rows[0].leased };
  }

  async nextDueAt(): Promise<number | undefined> {
    const r = await this.op(() => this.ctx.db.query<{ at: number | null }>('SELECT min(ready_at) AS at FROM outpost_queue_items WHERE queue = $1 AND head', [this.name]));
    return r.rows[0].at ?? undefined;
  }

  onReady(fn: () => void): () => void {
    this.listeners.add(fn);
    this.requestArm();
    return () => this.listeners.delete(fn);
  }

  /** Rows need no compaction (the server's vacuum reclaims deleted ones). */
  async compact(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.listeners.clear();
    await Promise.all([this.schedules.settled(), this.removals.settled()]);
    await Promise.allSettled([...this.inflight]);
  }

  // ---- moving a queue between backends (store export/import) ----

  /** Everything the queue holds, in schedule order, the last seq it handed out and its checkpoint. */
  async contents(): Promise<QueueContents<T>> {
    const { rows, seq, checkpoint } = await this.op(() =>
      this.ctx.db.tx(async (c) => {
        const items = await c.query<Row>(`SELECT ${COLUMNS} FROM outpost_queue_items WHERE queue = $1 ORDER BY seq`, [this.name]);
        const q = await c.query<{ seq: number; checkpoint: number }>('SELECT seq, checkpoint FROM outpost_queues WHERE name = $1', [this.name]);
        return { rows: items.rows, seq: q.rows[0]?.seq ?? 0, checkpoint: q.rows[0]?.checkpoint ?? 0 };
      }, 'REPEATABLE READ'),
    );
    return { seq, checkpoint, items: rows.map((r) => ({ ...this.view(r), seq: r.seq })) };
  }

  /** Fills an empty queue with contents as they were (ids, order, attempts, times); leases are not kept. */
  async restore(contents: QueueContents<T>): Promise<void> {
    const lanes = new Set<string>();
    const items = [...contents.items].sort((a, b) => a.seq - b.seq);
    // The first item of each lane is its head.
    const head = items.map((it) => {
      if (it.key === undefined) return true;
      if (lanes.has(it.key)) return false;
      lanes.add(it.key);
      return true;
    });
    const col = <V>(f: (it: (typeof items)[number]) => V) => items.map(f);
    await this.op(() =>
      this.ctx.db.tx(async (c) => {
        await c.query(
          `INSERT INTO outpost_queue_items (queue, id, seq, key, head, due_at, attempts, last_error, created_at, item)
           SELECT $1, t.* FROM unnest($2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::bigint[], $7::integer[], $8::text[], $9::bigint[], $10::text[]) AS t`,
          [this.name, col((it) => it.id), col((it) => it.seq), col((it) => it.key ?? null), head, col((it) => it.dueAt), col((it) => it.attempts), col((it) => it.lastError ?? null), col((it) => it.createdAt), col((it) => JSON.stringify(it.item))],
        );
        await c.query('UPDATE outpost_queues SET seq = GREATEST(seq, $2), checkpoint = GREATEST(checkpoint, $3) WHERE name = $1', [this.name, contents.seq, contents.checkpoint]);
      }),
    );
    this.cp = Math.max(this.cp, contents.checkpoint);
  }

  // ---- internals ----

  private view(row: Row): QueuedItem<T> {
    return {
      id: row.id,
      ...(row.key !== null ? { key: row.key } : {}),
      item: parseRecordJson(row.item) as T,
      dueAt: row.due_at,
      attempts: row.attempts,
      ...(row.last_error !== null ? { lastError: row.last_error } : {}),
      createdAt: row.created_at,
    };
  }

  /** Runs a database operation: typed error on failure, health told either way, close() waits for it. */
  private async op<R>(fn: () => Promise<R>): Promise<R> {
    try {
      const r = await this.track(fn());
      this.ctx.ok();
      return r;
    } catch (err) {
      // A refusal is the lease's verdict, not the database failing.
      if (err instanceof StaleLeaseError) throw err;
      throw this.ctx.failed(`queue ${this.name}`, err);
    }
  }

  /**
   * Runs fn on the pool, or, for singleton work, in a transaction that first checks the caller's fence
   * (the lease row stays locked until fn's writes commit) and throws a StaleLeaseError when it moved on.
   */
  private fenced<R>(what: string, fn: (run: Runner, fence?: Fence) => Promise<R>): Promise<R> {
    const fence = fenceOrThrow(`${what} in queue ${this.name}`);
    if (!fence) return fn(this.ctx.db);
    return this.ctx.db.tx(async (c) => {
      if (!(await validFences(c, [fence])).has(fenceKey(fence))) throw new StaleLeaseError(fence, `${what} in queue ${this.name}`);
      return fn(c, fence);
    });
  }

  private track<R>(p: Promise<R>): Promise<R> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }

  /** Removes an item (ack with a token: only if that lease is still the item's); its lane moves on. */
  private async remove(id: string, token: number | undefined): Promise<boolean> {
    const fence = fenceOrThrow(`remove from queue ${this.name}`);
    const req: Removal = { id, token: token ?? null, done: false, ...(fence ? { fence } : {}) };
    await this.op(() => this.removals.add([req]));
    if (req.stale) throw new StaleLeaseError(fence!, `remove ${id} from queue ${this.name}`);
    this.requestArm();
    return req.done;
  }

  /**
   * The acks and cancels of a turn, together: items without a lane go in one DELETE; lane items in
   * one transaction that locks their lanes (in a fixed order), deletes them and hands each emptied
   * lane head's flag to the next item.
   */
  private async removeMany(reqs: Removal[]): Promise<void> {
    const fenced = reqs.filter((r) => r.fence);
    if (fenced.length === 0) return this.removeRounds(reqs, this.ctx.db, (fn) => this.ctx.db.tx(fn));
    // With singleton work's removals, the whole turn is one transaction holding their lease rows.
    await this.ctx.db.tx(async (c) => {
      const valid = await validFences(c, fenced.map((r) => r.fence!));
      for (const r of fenced) if (!valid.has(fenceKey(r.fence!))) r.stale = true;
      await this.removeRounds(
        reqs.filter((r) => !r.stale),
        c,
        (fn) => fn(c),
      );
    });
  }

  private async removeRounds(all: Removal[], run: Runner, tx: <R>(fn: (c: Runner) => Promise<R>) => Promise<R>): Promise<void> {
    // The same item twice in a turn (an ack racing a cancel): one after the other, as they came.
    for (let left = all; left.length > 0; ) {
      const round: Removal[] = [];
      const later: Removal[] = [];
      const ids = new Set<string>();
      for (const r of left) {
        if (ids.has(r.id)) later.push(r);
        else {
          ids.add(r.id);
          round.push(r);
        }
      }
      await this.removeRound(round, run, tx);
      left = later;
    }
  }

  private async removeRound(reqs: Removal[], db: Runner, tx: <R>(fn: (c: Runner) => Promise<R>) => Promise<R>): Promise<void> {
    const loose = await db.query<{ id: string }>(`${REMOVE} AND key IS NULL RETURNING id`, removeParams(this.name, reqs));
    const gone = new Set(loose.rows.map((r) => r.id));
    const rest = reqs.filter((r) => !gone.has(r.id));
    if (rest.length > 0) {
      const keyed = await db.query<{ id: string; key: string }>('SELECT id, key FROM outpost_queue_items WHERE queue = $1 AND id = ANY($2::text[]) AND key IS NOT NULL', [this.name, rest.map((r) => r.id)]);
      if (keyed.rows.length > 0) {
        const lanes = [...new Set(keyed.rows.map((r) => r.key))].sort();
        const mine = rest.filter((r) => keyed.rows.some((k) => k.id === r.id));
        await tx(async (c) => {
          await c.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext(k)) FROM unnest($2::text[]) AS k ORDER BY k', [this.name, lanes]);
          const del = await c.query<{ id: string; key: string; head: boolean }>(`${REMOVE} RETURNING id, key, head`, removeParams(this.name, mine));
          for (const r of del.rows) gone.add(r.id);
          const emptied = [...new Set(del.rows.filter((r) => r.head).map((r) => r.key))];
          if (emptied.length > 0) await c.query(PROMOTE, [this.name, emptied]);
        });
      }
    }
    for (const r of reqs) r.done = gone.has(r.id);
  }

  /** One transaction for every schedule call of a turn: ids assigned, lanes' heads set, rows inserted. */
  private async insert(all: Array<Job<T>>): Promise<void> {
    let jobs = all;
    let cp: number | undefined;
    const now = Date.now();
    try {
      await this.ctx.db.tx(async (c) => {
        const fenced = all.filter((j) => j.fence);
        if (fenced.length > 0) {
          // Singleton work's schedules whose lease moved on leave the batch; the rest is written.
          const valid = await validFences(c, fenced.map((j) => j.fence!));
          for (const j of fenced) if (!valid.has(fenceKey(j.fence!))) j.stale = true;
          jobs = all.filter((j) => !j.stale);
        }
        const entries = jobs.flatMap((j) => j.list);
        const checkpoints = jobs.flatMap((j) => (j.checkpoint !== undefined ? [j.checkpoint] : []));
        cp = checkpoints.length > 0 ? Math.max(...checkpoints) : undefined;
        const base = (await c.query<{ seq: number }>('SELECT seq FROM outpost_queues WHERE name = $1 FOR UPDATE', [this.name])).rows[0].seq;
        const keys = [...new Set(entries.flatMap((e) => (e.key !== undefined ? [e.key] : [])))].sort();
        // Fixed order, so two processes locking overlapping lanes cannot deadlock.
        if (keys.length > 0) await c.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext(k)) FROM unnest($2::text[]) AS k ORDER BY k', [this.name, keys]);
        const candidates = entries.map((e, i) => e.id ?? `q_${(base + i + 1).toString(36)}`);
        const taken = new Set((await c.query<{ id: string }>('SELECT id FROM outpost_queue_items WHERE queue = $1 AND id = ANY($2::text[])', [this.name, candidates])).rows.map((r) => r.id));
        const busyLanes = new Set(keys.length ? (await c.query<{ key: string }>('SELECT DISTINCT key FROM outpost_queue_items WHERE queue = $1 AND key = ANY($2::text[])', [this.name, keys])).rows.map((r) => r.key) : []);
        let seq = base;
        const rows: Array<[string, number, string | null, boolean, number, string]> = [];
        for (const job of jobs) {
          for (const e of job.list) {
            if (e.id !== undefined && taken.has(e.id)) {
              job.ids.push(e.id);
              continue;
            }
            seq += 1;
            let id = e.id ?? `q_${seq.toString(36)}`;
            // A generated id may equal one given earlier by a caller: the caller's keeps it.
            if (e.id === undefined && taken.has(id)) id = `q_${seq.toString(36)}_${now.toString(36)}`;
            taken.add(id);
            const head = e.key === undefined || !busyLanes.has(e.key);
            if (e.key !== undefined) busyLanes.add(e.key);
            rows.push([id, seq, e.key ?? null, head, e.dueAt, JSON.stringify(e.item)]);
            job.ids.push(id);
          }
        }
        if (cp !== undefined) await c.query('UPDATE outpost_queues SET checkpoint = GREATEST(checkpoint, $2) WHERE name = $1', [this.name, cp]);
        if (rows.length === 0) return;
        await c.query(
          `INSERT INTO outpost_queue_items (queue, id, seq, key, head, due_at, created_at, item)
           SELECT $1, t.id, t.seq, t.key, t.head, t.due, $8, t.item
           FROM unnest($2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::bigint[], $7::text[]) AS t(id, seq, key, head, due, item)`,
          [this.name, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3]), rows.map((r) => r[4]), rows.map((r) => r[5]), now],
        );
        await c.query('UPDATE outpost_queues SET seq = $2 WHERE name = $1', [this.name, seq]);
      });
      if (cp !== undefined) this.cp = Math.max(this.cp, cp);
      this.ctx.ok();
    } catch (err) {
      for (const j of all) j.ids.length = 0;
      throw this.ctx.failed(`queue ${this.name}`, err);
    }
  }

  /** Coalesces the re-arms asked for in one turn into one look at the next due time. */
  private requestArm(): void {
    if (this.armQueued || this.closed || this.listeners.size === 0) return;
    this.armQueued = true;
    setImmediate(() => {
      this.armQueued = false;
      void this.arm();
    });
  }

  /**
   * One timer, for the next due head or the next poll, whichever is sooner. Listeners are told once
   * per due time; a consumer that had no room is told again at the next poll or change.
   */
  private async arm(): Promise<void> {
    if (this.closed || this.listeners.size === 0) return;
    let at: number | undefined;
    try {
      at = await this.nextDueAt();
    } catch {
      at = undefined; // the database is away: look again at the next poll
    }
    if (this.closed || this.armQueued) return;
    clearTimeout(this.timer);
    const now = Date.now();
    let delay = at === undefined ? this.pollMs : Math.min(this.pollMs, Math.max(0, at - now));
    if (at !== undefined && at <= now && this.told === at) delay = this.pollMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (at !== undefined && at <= Date.now()) {
        this.told = at;
        for (const fn of this.listeners) fn();
      } else this.told = undefined;
      this.requestArm();
    }, delay);
    this.timer.unref();
  }
}
