/**
 * Store<T> on PostgreSQL. The document stays in memory (`data`, read synchronously as with lowdb);
 * update() applies its function there and resolves once the changed rows (store-rows.ts) are
 * committed. Updates made while a commit is in flight share the next one (group commit).
 *
 * Each commit is one statement that first bumps the store's version, and only if it is still the
 * version this process last saw: the version row's lock orders commits to one store across
 * controllers, and a commit that finds the version moved writes nothing. The store then reads the
 * rows changed since, takes them in, and commits again, unless one of them is a row it changed
 * itself: then the updates of the batch fail with a StorageConflictError (their rows show the other
 * writer's values) and the caller decides, e.g. join tokens re-check and retry, so a token's uses
 * are consumed exactly once across controllers.
 *
 * A commit that fails (conflict, database unreachable) undoes its changes in memory and rejects every
 * update not yet committed: what a caller was told failed is not written later behind its back, and
 * memory always shows what the database holds plus what is being committed.
 *
 * Other controllers' commits reach memory without a write here too: each commit NOTIFYs (in its
 * statement, so only once it commits) and the controller's listener (store-listener.ts) calls
 * refresh(), which catches up through the same commit loop, so it never interleaves with a commit.
 * Owners of indexes built from the data learn of such rows through onRemoteChange.
 */
import type { RemoteChange, Store, UpdateOptions } from '../../../plugins/sdk/store.ts';
import { withoutPrototypes } from '../../../plugins/sdk/json.ts';
import { StorageConflictError } from '../../../plugins/sdk/durable/storage-error.ts';
import { fenceKey, fenceOrThrow, StaleLeaseError, type Fence } from '../../../plugins/sdk/durable/fence.ts';
import type { PgContext } from './context.ts';
import { validFences } from './fence-check.ts';
import { PgHistory } from './pg-history.ts';
import { STORE_CHANNEL } from './store-listener.ts';
import { applyRows, countRows, FIELD_ROW, deleteRow, diffRows, diffRowsAt, documentOf, pickRows, rowsOf, rowText, setRow, textOf, touchedRows, type RowChange, type RowKey, type Rows } from './store-rows.ts';

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
  /** Singleton work's write: checked against its lease in the commit's transaction. */
  fence?: Fence;
  /** A fenced update's own changes, with the rows as they were before it: undone alone when it is refused. */
  own?: { changes: RowChange[]; before: Rows };
  stale?: boolean;
  /** The rows the update said it changes (UpdateOptions.touches); absent: any. */
  rows?: RowKey[];
}

type Exec = (text: string, values: unknown[]) => Promise<{ rows: Array<{ version: number }> }>;

/**
 * One statement per commit. Deleted rows are named with `= ANY` on the key columns so the primary key
 * drives the delete (joined to an unnest, the planner may scan the whole store per row).
 */
const COMMIT = `
WITH v AS (
  UPDATE outpost_stores SET version = version + 1, rows = rows + $8 WHERE name = $1 AND version = $2 RETURNING version
), up AS (
  INSERT INTO outpost_store_rows (store, field, entry, data, version)
  SELECT $1, t.f, t.e, t.d, v.version FROM v, unnest($3::text[], $4::text[], $5::text[]) AS t(f, e, d)
  ON CONFLICT (store, field, entry) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version
), del AS (
  DELETE FROM outpost_store_rows WHERE store = $1 AND EXISTS (SELECT 1 FROM v)
    AND field = ANY($6::text[]) AND entry = ANY($7::text[]) AND (field, entry) IN (SELECT * FROM unnest($6::text[], $7::text[]))
)
, n AS (
  SELECT pg_notify('${STORE_CHANNEL}', $1 || ' ' || v.version) FROM v
)
SELECT version FROM v, n`;

/** The rows changed after a version, and how many rows the store has: one snapshot. */
const CHANGED_ROWS = `
SELECT s.version, s.rows AS n, r.field, r.entry, r.data
FROM outpost_stores s LEFT JOIN outpost_store_rows r ON r.store = s.name AND r.version > $2
WHERE s.name = $1`;

/** Every row's key, and the text of those changed after a version: one snapshot of the store. */
const CHANGED_SINCE = `
SELECT s.version, s.rows AS n, r.field, r.entry, CASE WHEN r.version > $2 THEN r.data END AS data
FROM outpost_stores s LEFT JOIN outpost_store_rows r ON r.store = s.name
WHERE s.name = $1`;

export class PgStore<T extends object> implements Store<T> {
  data!: T;
  /** The rows as the database holds them (as of `version`). */
  private written: Rows = new Map();
  private version = 0;
  private waiting: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  /** Where archive() puts records: unbounded, as the lowdb store's history file is. */
  private readonly history: PgHistory<unknown>;
  private closed = false;
  /** Another process committed past `version` (a notification, the periodic check): catch up. */
  private behind = false;
  /** Rows other processes changed that listeners have not heard of yet. */
  private remote: RemoteChange[] = [];
  private readonly listeners = new Set<(changes: RemoteChange[]) => void>();

  private constructor(
    private readonly ctx: PgContext,
    readonly name: string,
  ) {
    this.history = new PgHistory(ctx, name, Infinity);
  }

  static async open<T extends object>(ctx: PgContext, name: string, defaults: T): Promise<PgStore<T>> {
    if (Array.isArray(defaults)) throw new Error(`store ${name}: its data must be an object, not an array`);
    const s = new PgStore<T>(ctx, name);
    try {
      await ctx.db.query('INSERT INTO outpost_stores (name) VALUES ($1) ON CONFLICT DO NOTHING', [name]);
      const r = await ctx.db.query<{ version: number; n: number; field: string | null; entry: string; data: string }>(CHANGED_SINCE, [name, -1]);
      s.version = r.rows[0].version;
      await s.checkCount(r.rows);
      for (const row of r.rows) if (row.field !== null) setRow(s.written, row.field, row.entry, row.data);
    } catch (err) {
      throw ctx.db.storageError(`store ${name}`, err);
    }
    // Fields added to the defaults since the data was written are filled in, as lowdb stores do.
    s.data = Object.assign(Object.create(null) as T, withoutPrototypes(defaults), documentOf(s.written));
    s.unfollow = ctx.follow(name, s);
    return s;
  }

  update<R>(fn: (data: T) => R, opts?: UpdateOptions): Promise<R> {
    if (this.closed) return Promise.reject(new Error(`store ${this.name} is closed`));
    let result: R;
    let fence: Fence | undefined;
    let own: Waiter['own'];
    const rows = opts?.touches ? touchedRows(opts.touches) : undefined;
    try {
      fence = fenceOrThrow(`write to store ${this.name}`);
      // A fenced update's changes are told apart from the others of its batch, so that its refusal undoes them alone.
      const snap = () => (rows ? pickRows(this.data, rows) : rowsOf(this.data));
      const before = fence ? snap() : undefined;
      result = fn(this.data);
      if (before) own = { changes: diffRows(before, snap()), before };
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ resolve: () => resolve(result), reject, ...(fence ? { fence, own } : {}), ...(rows ? { rows } : {}) });
      this.flushing ??= this.run();
    });
  }

  archive(records: unknown[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`store ${this.name} is closed`));
    return this.history.append(records);
  }

  private unfollow: () => void = () => undefined;

  /**
   * Told that the database holds `version` of this store (no version: it may have moved, e.g. after
   * notifications were lost); resolves once memory holds it. Bursts coalesce into one catch-up.
   */
  refresh(version?: number): Promise<void> {
    if (this.closed || (version !== undefined && version <= this.version)) return Promise.resolve();
    this.behind = true;
    return (this.flushing ??= this.run());
  }

  onRemoteChange(fn: (changes: RemoteChange[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unfollow();
    await Promise.allSettled([this.flushing, this.history.settled()]);
  }

  // ---- commits ----

  private async run(): Promise<void> {
    while (this.waiting.length > 0 || this.behind) {
      if (this.waiting.length === 0) {
        await this.follow();
        continue;
      }
      const batch = this.waiting;
      this.waiting = [];
      try {
        const fenced = batch.filter((w) => w.fence);
        const rows = batchRows(batch);
        if (fenced.length === 0) (await this.flush((t, v) => this.ctx.db.query(t, v), rows))?.();
        else {
          // The lease rows stay locked FOR KEY SHARE until this commit: no takeover lands in between.
          const done = await this.ctx.db.tx(async (c) => {
            const valid = await validFences(c, fenced.map((w) => w.fence!));
            const stale = fenced.filter((w) => !valid.has(fenceKey(w.fence!)));
            for (const w of stale) w.stale = true;
            this.undo(stale);
            return this.flush((t, v) => c.query(t, v), rows);
          });
          done?.();
        }
        for (const w of batch) (w.stale ? w.reject(new StaleLeaseError(w.fence!, `write to store ${this.name}`)) : w.resolve());
      } catch (err) {
        // Changes not on the database: this batch's and those made since. Undo them all.
        const all = [...batch, ...this.waiting];
        this.waiting = [];
        this.revert();
        const e = err instanceof StorageConflictError ? err : this.ctx.failed(`store ${this.name}`, err);
        for (const w of all) w.reject(e);
      }
      this.emit();
    }
    this.flushing = undefined;
  }

  /** A catch-up with nothing of this process's to commit. */
  private async follow(): Promise<void> {
    this.behind = false;
    try {
      await this.catchUp();
    } catch (err) {
      // Updates made while the rows were read changed some of them too: they lose, as in a commit.
      if (err instanceof StorageConflictError) {
        const all = this.waiting;
        this.waiting = [];
        this.revert();
        for (const w of all) w.reject(err);
      } else {
        // Unreachable (nothing was taken in): the listener's next check tries again.
        this.ctx.log.warn({ store: this.name, err: this.ctx.db.storageError(this.name, err).message }, 'could not read other controllers\' changes; retrying with the next check');
      }
    }
    this.emit();
  }

  private emit(): void {
    if (this.remote.length === 0) return;
    const changes = this.remote;
    this.remote = [];
    for (const fn of this.listeners) {
      try {
        fn(changes);
      } catch (err) {
        this.ctx.log.error({ store: this.name, err: (err as Error).message }, 'a listener of remote changes failed');
      }
    }
  }

  /**
   * Writes what memory holds beyond `written`; resolves with what records the commit as written, to
   * be called once the commit's transaction (if any) has committed.
   */
  private async flush(exec: Exec, rows: RowKey[] | undefined): Promise<(() => void) | undefined> {
    for (;;) {
      const changes = (rows && diffRowsAt(this.written, this.data, rows)) ?? diffRows(this.written, rowsOf(this.data));
      if (changes.length === 0) return undefined;
      const up = changes.filter((c) => c.text !== undefined);
      const del = changes.filter((c) => c.text === undefined);
      // `written` is the database's rows at `version`, and the commit lands only at that version:
      // so it knows exactly how many rows the commit adds and removes.
      const added = up.filter((c) => rowText(this.written, c.field, c.entry) === undefined).length;
      const removed = del.filter((c) => rowText(this.written, c.field, c.entry) !== undefined).length;
      const r = await exec(COMMIT, [
        this.name,
        this.version,
        up.map((c) => c.field),
        up.map((c) => c.entry),
        up.map((c) => c.text),
        del.map((c) => c.field),
        del.map((c) => c.entry),
        added - removed,
      ]);
      if (r.rows.length === 1) {
        const version = r.rows[0].version;
        return () => {
          this.version = version;
          this.take(changes);
          this.ctx.ok();
        };
      }
      // Another process committed to this store since we last looked.
      await this.catchUp();
    }
  }

  /**
   * Every row of the store at one version, with the count the store row keeps: where they differ (a
   * controller of a release before schema 6 committed meanwhile), the count is set right at that
   * version, so catch-ups go back to reading only the changed rows.
   */
  private async checkCount(rows: Array<{ version: number; n: number; field: string | null }>): Promise<void> {
    const truth = rows.filter((r) => r.field !== null).length;
    if (rows[0].n === truth) return;
    await this.ctx.db.query('UPDATE outpost_stores SET rows = $3 WHERE name = $1 AND version = $2', [this.name, rows[0].version, truth]).catch(() => undefined);
  }

  /** Records committed rows as written. */
  private take(changes: RowChange[]): void {
    for (const c of changes) {
      if (c.text === undefined) deleteRow(this.written, c.field, c.entry);
      else setRow(this.written, c.field, c.entry, c.text);
    }
  }

  /**
   * Takes in the rows another process changed: into memory where this process has not changed them
   * too; where it has, the batch conflicts. Reads the rows changed since `version` and the store's
   * row count: when the count says nothing was deleted (the usual case: a notification per commit),
   * that is all; otherwise every key, to find the deleted ones. Cost per catch-up is the changed rows,
   * not the store.
   */
  private async catchUp(): Promise<void> {
    type Changed = { version: number; n: number; field: string | null; entry: string; data: string };
    const r = await this.ctx.db.query<Changed>(CHANGED_ROWS, [this.name, this.version]);
    const changed = r.rows.filter((row) => row.field !== null);
    let added = 0;
    for (const row of changed) if (rowText(this.written, row.field!, row.entry) === undefined) added++;
    let remote: RowChange[];
    let version = r.rows[0].version;
    if (countRows(this.written) + added === r.rows[0].n) {
      remote = changed.filter((row) => rowText(this.written, row.field!, row.entry) !== row.data).map((row) => ({ field: row.field!, entry: row.entry, text: row.data }));
    } else {
      const all = await this.ctx.db.query<{ version: number; n: number; field: string | null; entry: string; data: string | null }>(CHANGED_SINCE, [this.name, this.version]);
      version = all.rows[0].version;
      await this.checkCount(all.rows);
      const theirs: Rows = new Map();
      for (const row of all.rows) {
        if (row.field === null) continue;
        const text = row.data ?? rowText(this.written, row.field, row.entry);
        // A row this process has not seen and that did not change since its version cannot be: treat as changed.
        if (text !== undefined) setRow(theirs, row.field, row.entry, text);
      }
      remote = diffRows(this.written, theirs);
    }
    // Changed here too (memory as it is once the rows are read: updates made meanwhile count), even
    // to the same value: both changes were made from the old one (two increments that both wrote 1
    // are a lost increment, not an agreement).
    const conflicts = remote.filter((c) => textOf(this.data, c.field, c.entry) !== rowText(this.written, c.field, c.entry));
    for (const c of remote) {
      if (c.text === undefined) deleteRow(this.written, c.field, c.entry);
      else setRow(this.written, c.field, c.entry, c.text);
    }
    this.version = version;
    // Conflicting rows reach memory too, through the revert that follows the conflict.
    for (const c of remote) this.remote.push({ field: c.field, ...(c.entry === FIELD_ROW ? {} : { key: c.entry.slice(1) }) });
    if (conflicts.length > 0) {
      throw new StorageConflictError(this.name, conflicts.map((c) => (c.entry ? `${c.field}${c.entry}` : c.field)));
    }
    applyRows(this.data as Record<string, unknown>, this.written, remote);
  }

  /** Undoes refused fenced updates' own changes, where nothing changed them since. */
  private undo(refused: Waiter[]): void {
    for (const w of [...refused].reverse()) {
      const mine = w.own!.changes.filter((c) => textOf(this.data, c.field, c.entry) === c.text);
      applyRows(this.data as Record<string, unknown>, w.own!.before, mine);
    }
  }

  /** Makes memory what the database holds. */
  private revert(): void {
    applyRows(this.data as Record<string, unknown>, this.written, diffRows(this.written, rowsOf(this.data)));
  }
}

/** The rows a batch changes when every update in it named its touches; undefined: compare everything. */
function batchRows(batch: Waiter[]): RowKey[] | undefined {
  if (batch.some((w) => !w.rows)) return undefined;
  const seen = new Map<string, RowKey>();
  for (const w of batch) for (const k of w.rows!) seen.set(`${k[0]}\u0000${k[1]}`, k);
  return [...seen.values()];
}
