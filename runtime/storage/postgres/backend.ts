/**
 * The PostgreSQL StorageBackend: stores, logs and queues of a mounted data dir as rows of one
 * database (schema.ts), plus exclusive sections across processes (session advisory locks).
 */
import type { ZodType } from 'zod';
import type { StorageBackend } from '../../../plugins/sdk/durable/backend.ts';
import type { LogOptions } from '../../../plugins/sdk/durable/log.ts';
import type { QueueOptions } from '../../../plugins/sdk/durable/queue.ts';
import type { PgContext } from './context.ts';
import { PgHistory } from './pg-history.ts';
import { PgLog } from './pg-log.ts';
import { PgQueue } from './pg-queue.ts';
import { PgStore } from './pg-store.ts';

const NAME = /^[a-z0-9][a-z0-9._/-]{0,199}$/i;

export class PostgresBackend implements StorageBackend {
  readonly kind = 'postgres';

  constructor(readonly ctx: PgContext) {}

  openStore<T extends object>(name: string, defaults: T): Promise<PgStore<T>> {
    return PgStore.open(this.ctx, checked(name), defaults);
  }

  openLog<R>(name: string, schema: ZodType<R>, opts: LogOptions<R>): Promise<PgLog<R>> {
    return PgLog.open(this.ctx, checked(name), schema, opts);
  }

  openQueue<T>(name: string, schema: ZodType<T>, opts: QueueOptions): Promise<PgQueue<T>> {
    return PgQueue.open(this.ctx, checked(name), schema, opts);
  }

  async openHistory<T>(name: string, opts: { maxBytes: number }): Promise<PgHistory<T>> {
    return new PgHistory<T>(this.ctx, checked(name), opts.maxBytes);
  }

  /** Holds a session advisory lock on a connection of its own while fn runs; fn's queries use others. */
  async exclusive<R>(name: string, fn: () => Promise<R>): Promise<R> {
    const { db } = this.ctx;
    let conn: Awaited<ReturnType<typeof db.connect>> | undefined;
    try {
      conn = await db.connect();
      await conn.client.query('SELECT pg_advisory_lock(hashtext($1))', [`outpost:${name}`]);
    } catch (err) {
      conn?.done(true);
      throw this.ctx.failed(name, err);
    }
    const { client, done } = conn;
    try {
      return await fn();
    } finally {
      // A lock that cannot be released goes with its connection.
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`outpost:${name}`]).then(
        () => done(),
        () => done(true),
      );
    }
  }
}

/** Names come from paths under the data dir and plugin-chosen names, already checked there; this guards the tables. */
function checked(name: string): string {
  if (!NAME.test(name) || name.includes('..')) throw new Error(`storage name "${name.slice(0, 200)}" is not valid`);
  return name;
}
