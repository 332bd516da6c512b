/**
 * The database schema, versioned: migration N brings a database from version N-1 to N. `migrate`
 * applies what a database lacks in one transaction under an advisory lock (controllers starting
 * together, or `outpost store migrate` run twice, apply each migration once), changes nothing when
 * the database is current, and refuses a database whose schema is newer than this code knows: an
 * older controller must not write data whose meaning has changed under it.
 *
 * Data columns are `text` holding JSON exactly as written: no server-side parse on the hot path, and
 * every value JSON.stringify can produce round-trips (json/jsonb refuse some escapes).
 */
import type pg from 'pg';
import type { Database } from './database.ts';

const MIGRATIONS: string[][] = [
  // 1: stores (a row per top-level field, and per entry of an object field), their history, logs, queues.
  [
    `CREATE TABLE outpost_stores (
      name text PRIMARY KEY,
      version bigint NOT NULL DEFAULT 0
    )`,
    `CREATE TABLE outpost_store_rows (
      store text NOT NULL,
      field text NOT NULL,
      entry text NOT NULL,
      data text NOT NULL,
      version bigint NOT NULL,
      PRIMARY KEY (store, field, entry)
    )`,
    `CREATE TABLE outpost_store_history (
      store text NOT NULL,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      data text NOT NULL,
      PRIMARY KEY (store, seq)
    )`,
    `CREATE TABLE outpost_logs (
      name text PRIMARY KEY,
      generation integer NOT NULL DEFAULT 0,
      cut bigint NOT NULL DEFAULT 0
    )`,
    `CREATE TABLE outpost_log_records (
      log text NOT NULL,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      data text NOT NULL,
      PRIMARY KEY (log, seq)
    )`,
    `CREATE TABLE outpost_log_snapshots (
      log text NOT NULL,
      generation integer NOT NULL,
      n integer NOT NULL,
      data text NOT NULL,
      PRIMARY KEY (log, generation, n)
    )`,
    `CREATE TABLE outpost_queues (
      name text PRIMARY KEY,
      seq bigint NOT NULL DEFAULT 0
    )`,
    `CREATE TABLE outpost_queue_items (
      queue text NOT NULL,
      id text NOT NULL,
      seq bigint NOT NULL,
      key text,
      head boolean NOT NULL,
      due_at bigint NOT NULL,
      leased_until bigint NOT NULL DEFAULT 0,
      ready_at bigint GENERATED ALWAYS AS (GREATEST(due_at, leased_until)) STORED,
      token integer NOT NULL DEFAULT 0,
      lease_owner text,
      attempts integer NOT NULL DEFAULT 0,
      last_error text,
      created_at bigint NOT NULL,
      item text NOT NULL,
      PRIMARY KEY (queue, id)
    )`,
    `CREATE INDEX outpost_queue_ready ON outpost_queue_items (queue, ready_at, seq) WHERE head`,
    `CREATE INDEX outpost_queue_lanes ON outpost_queue_items (queue, key, seq) WHERE key IS NOT NULL`,
  ],
  // 2: a queue's checkpoint (its owner's position in a source it turns into items), written with a batch.
  [`ALTER TABLE outpost_queues ADD COLUMN checkpoint double precision NOT NULL DEFAULT 0`],
  // 3: several controllers on one database: the fenced singleton lease, and each controller's links (runtime/cluster/).
  [
    `CREATE TABLE outpost_leases (
      name text PRIMARY KEY,
      holder text NOT NULL,
      epoch bigint NOT NULL,
      expires_at timestamptz NOT NULL
    )`,
    `CREATE TABLE outpost_presence (
      controller text PRIMARY KEY,
      links text NOT NULL,
      info text NOT NULL,
      expires_at timestamptz NOT NULL
    )`,
  ],
  // 4: logs followed across controllers (pg-log.ts): a version bumped by every append (its row lock
  // orders a log's appends, so record numbers follow commit order), and the highest record number a
  // compaction deleted (a follower behind it reloads from the snapshot).
  [`ALTER TABLE outpost_logs ADD COLUMN version bigint NOT NULL DEFAULT 0`, `ALTER TABLE outpost_logs ADD COLUMN dropped bigint NOT NULL DEFAULT 0`],
  // 5: presence carries the linked nodes' plugin states and capabilities (`nodes`), and a revision that
  // changes only when links or states do: readers skip unchanged rows, renewals rewrite only the expiry.
  [`ALTER TABLE outpost_presence ADD COLUMN rev bigint NOT NULL DEFAULT 0, ADD COLUMN nodes text NOT NULL DEFAULT '{}'`],
  // 6: a store's row count kept with its version by every commit (pg-store.ts): a catch-up learns
  // whether rows were deleted without counting the store's rows (a scan of 30,000 node rows per
  // catch-up, on every controller, for every commit any of them made).
  [
    `ALTER TABLE outpost_stores ADD COLUMN rows bigint NOT NULL DEFAULT 0`,
    `UPDATE outpost_stores s SET rows = (SELECT count(*) FROM outpost_store_rows r WHERE r.store = s.name)`,
  ],
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Taken by migrate for its transaction; any 64-bit constant unlikely to collide with an application's own. */
const MIGRATE_LOCK = 0x6f75_7470_6f73_74n; // "outpost"

export interface MigrateResult {
  from: number;
  to: number;
  applied: number[];
}

export class SchemaTooNewError extends Error {
  constructor(found: number, where: string) {
    super(
      `the database at ${where} has Outpost schema version ${found}, newer than this Outpost knows (${SCHEMA_VERSION}): ` +
        'a newer release migrated it; run that release (or a later one) here, or point store.url at another database',
    );
    this.name = 'SchemaTooNewError';
  }
}

/** Anything that runs a statement: the pool, or a connection in a transaction. */
type Runs = { query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> };

async function currentVersion(c: Runs): Promise<number | null> {
  const t = await c.query<{ t: string | null }>(`SELECT to_regclass('outpost_schema')::text AS t`);
  if (t.rows[0].t === null) return null;
  const v = await c.query<{ version: number }>('SELECT version FROM outpost_schema');
  return v.rows[0]?.version ?? 0;
}

/** Brings the database to SCHEMA_VERSION; a database already there is left exactly as it is. */
export async function migrate(db: Database): Promise<MigrateResult> {
  return db.tx(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK.toString()]);
    const found = await currentVersion(c);
    const from = found ?? 0;
    if (from > SCHEMA_VERSION) throw new SchemaTooNewError(from, db.where);
    const applied: number[] = [];
    if (from === SCHEMA_VERSION) return { from, to: from, applied };
    if (found === null) {
      await c.query(`CREATE TABLE outpost_schema (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version integer NOT NULL,
        migrated_at timestamptz NOT NULL DEFAULT now()
      )`);
      await c.query('INSERT INTO outpost_schema (version) VALUES (0)');
    }
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
      for (const sql of MIGRATIONS[v - 1]) await c.query(sql);
      applied.push(v);
    }
    await c.query('UPDATE outpost_schema SET version = $1, migrated_at = now()', [SCHEMA_VERSION]);
    return { from, to: SCHEMA_VERSION, applied };
  });
}
