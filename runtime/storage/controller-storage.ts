/**
 * Opens the controller's storage before anything reads it: for PostgreSQL, connects, brings the schema
 * up to date (refusing a newer one) and mounts the data dir on the database, so every store, log and
 * queue the controller and its plugins open under it lands there. A ping keeps the health current
 * while nothing writes, so /readyz says so when the database goes away and clears when it is back.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Log } from '../../plugins/sdk/log.ts';
import type { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import { mountStorage } from '../../plugins/sdk/durable/backend.ts';
import { resolveStore, type ResolvedStore, type StoreConfig } from './store-config.ts';
import type { Database } from './postgres/database.ts';
import type { MigrateResult } from './postgres/schema.ts';

export interface ControllerStorage {
  kind: 'lowdb' | 'postgres';
  /** For PostgreSQL: host:port/database (no credentials). */
  where?: string;
  /** For PostgreSQL: the pool (the singleton lease and link presence use it). */
  db?: Database;
  /**
   * For PostgreSQL: fn runs when another controller notifies STORE_CHANNEL with `<name> <version>`
   * (link presence, whose rows are no store). Returns its removal.
   */
  onNotified?(name: string, fn: (version: number) => void): () => void;
  /** Unmounts and closes the pool; call after everything using the storage has stopped. */
  close(): Promise<void>;
}

const PING_MS = 2000;

export async function openControllerStorage(config: StoreConfig, dataDir: string, opts: { health: StorageHealth; log: Log; env?: NodeJS.ProcessEnv }): Promise<ControllerStorage> {
  const store = resolveStore(config, opts.env);
  if (store.kind === 'lowdb') return { kind: 'lowdb', close: async () => undefined };
  const { db } = await openDatabase(store, 'outpost-controller');
  const [{ PgContext }, { PostgresBackend }] = await Promise.all([import('./postgres/context.ts'), import('./postgres/backend.ts')]);
  const log = opts.log.child({ part: 'store' });
  // The owner of this controller's queue leases: the same after a restart on the same data dir.
  const ctx = new PgContext(db, `${hostname()}:${resolve(dataDir)}`, log, opts.health);
  const unmount = mountStorage(dataDir, new PostgresBackend(ctx));
  const listener = await followOtherControllers(ctx, db, log, opts.env ?? process.env);
  let down = false;
  const report = (err: unknown) => {
    const e = ctx.failed('ping', err);
    if (!down) log.error({ err: e.message }, 'PostgreSQL unreachable; writes answer 503 until it is back');
    down = true;
  };
  const offIdle = db.onIdleError(report);
  const ping = setInterval(() => {
    db.query('SELECT 1').then(() => {
      if (down) log.info({ where: db.where }, 'PostgreSQL reachable again');
      down = false;
      ctx.ok();
    }, report);
  }, PING_MS);
  ping.unref();
  log.info({ where: db.where }, 'state in PostgreSQL');
  return {
    kind: 'postgres',
    where: db.where,
    db,
    onNotified: (name, fn) => ctx.follow(name, { refresh: async (v) => fn(v ?? 0) }),
    async close() {
      await listener.close();
      clearInterval(ping);
      offIdle();
      unmount();
      await db.close();
    },
  };
}

/** The stores and logs open here take in other controllers' commits as they are notified of them (store-listener.ts). */
async function followOtherControllers(ctx: import('./postgres/context.ts').PgContext, db: Database, log: Log, env: NodeJS.ProcessEnv) {
  const { StoreListener, STORE_CHANNEL, LOG_PREFIX } = await import('./postgres/store-listener.ts');
  const listener = new StoreListener({
    open: (onPayload, onLost) => db.listen(STORE_CHANNEL, onPayload, onLost),
    versions: async (names) => {
      const logs = names.filter((n) => n.startsWith(LOG_PREFIX)).map((n) => n.slice(LOG_PREFIX.length));
      const stores = names.filter((n) => !n.startsWith(LOG_PREFIX));
      const r = await db.query<{ name: string; version: number }>(
        `SELECT name, version FROM outpost_stores WHERE name = ANY($1::text[]) UNION ALL SELECT '${LOG_PREFIX}' || name, version FROM outpost_logs WHERE name = ANY($2::text[])`,
        [stores, logs],
      );
      return r.rows;
    },
    names: () => ctx.followedNames(),
    refresh: (name, version) => ctx.refresh(name, version),
    log,
    checkMs: Number(env.OUTPOST_STORE_CHECK_MS) || undefined,
  });
  await listener.start();
  return listener;
}

/** A pool on the database with its schema current; throws a one-line reason (unreachable, schema too new). */
export async function openDatabase(store: Extract<ResolvedStore, { kind: 'postgres' }>, application: string): Promise<{ db: Database; migrated: MigrateResult }> {
  // The driver loads only for controllers (and tools) that use PostgreSQL.
  const [{ Database, describePgError }, { migrate }] = await Promise.all([import('./postgres/database.ts'), import('./postgres/schema.ts')]);
  const db = new Database({ url: store.url, ssl: store.ssl, poolSize: store.poolSize, timeoutMs: store.timeoutMs, application });
  try {
    return { db, migrated: await migrate(db) };
  } catch (err) {
    await db.close().catch(() => undefined);
    if ((err as Error).name === 'SchemaTooNewError') throw err;
    throw new Error(`cannot use PostgreSQL at ${db.where}: ${describePgError(err)}`);
  }
}
