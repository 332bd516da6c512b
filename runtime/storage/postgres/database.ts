/**
 * The connection pool to the PostgreSQL database holding a controller's state, and the mapping of
 * its failures onto the SDK's typed storage errors (a lost server is `unavailable`: HTTP 503).
 * The URL's password never leaves this file: everything shown says `where` (host:port/database).
 */
import pg from 'pg';
import type { ConnectionOptions } from 'node:tls';
import { StorageWriteError } from '../../../plugins/sdk/durable/storage-error.ts';
import { describeUrl, urlProblem } from './url.ts';
import type { Secret } from '../../../plugins/sdk/secret.ts';

export interface DatabaseOptions {
  /** postgres://user:password@host:port/database (revealed to the pool only). */
  url: Secret;
  /** TLS options for the connection (passed to node-postgres as they are). */
  ssl?: ConnectionOptions | boolean;
  /** Connections in the pool; default 10. */
  poolSize?: number;
  /** How long a connection attempt or a query may take before it counts as a failure; default 10 s. */
  timeoutMs?: number;
  /** Shown in pg_stat_activity. */
  application?: string;
  /**
   * The server ends a session left idle this long inside a transaction; default 5 s. A controller
   * paused (SIGSTOP, GC, a VM migration) in the middle of a fenced write holds the lease row FOR KEY SHARE:
   * without this the successor's takeover, and every write to rows it locked, waited for it forever.
   */
  idleInTransactionMs?: number;
}

/** int8 (bigint) columns hold epoch ms and sequence numbers, well inside a double's exact range. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser,
};

export class Database {
  readonly pool: pg.Pool;
  /** host:port/database, for messages. */
  readonly where: string;
  private readonly listeners = new Set<(err: Error) => void>();
  /** How to connect (holds the password: stays private). */
  private readonly client: pg.ClientConfig;
  private readonly opts: DatabaseOptions;

  constructor(opts: DatabaseOptions) {
    this.opts = opts;
    const url = opts.url.reveal();
    const problem = urlProblem(url);
    if (problem) throw new Error(`store url ${problem}`);
    this.where = describeUrl(url);
    const timeout = opts.timeoutMs ?? 10_000;
    this.client = {
      connectionString: url,
      ...(opts.ssl !== undefined ? { ssl: opts.ssl } : {}),
      connectionTimeoutMillis: timeout,
      application_name: opts.application ?? 'outpost',
      options: `-c idle_in_transaction_session_timeout=${Math.max(1, Math.round(opts.idleInTransactionMs ?? 5000))}`,
      types,
    };
    this.pool = new pg.Pool({ ...this.client, max: opts.poolSize ?? 10, query_timeout: timeout, idleTimeoutMillis: 30_000 });
    // An idle connection dropped by the server (restart, network) is reported here; unhandled, it
    // would crash the process. The pool replaces it with a fresh connection on the next query.
    this.pool.on('error', (err) => {
      for (const l of this.listeners) l(err);
    });
  }

  /**
   * A small pool of its own on the same database, for statements that must not wait for a connection
   * behind the main pool's work (the lease's renewals), with their own time limit. Closed by its user.
   */
  side(purpose: string, size: number, timeoutMs: number): Database {
    return new Database({ ...this.opts, poolSize: size, timeoutMs, application: `${this.client.application_name}-${purpose}` });
  }

  /** Told about connections the server dropped while idle. */
  onIdleError(fn: (err: Error) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  /** Runs fn in a transaction on one connection: committed when it resolves, rolled back when it throws. */
  async tx<R>(fn: (c: pg.PoolClient) => Promise<R>, isolation: 'READ COMMITTED' | 'REPEATABLE READ' = 'READ COMMITTED'): Promise<R> {
    const { client: c, done } = await this.connect();
    let broken = false;
    try {
      await c.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      // A connection that could not even roll back is not handed out again.
      done(broken);
    }
  }

  /**
   * A connection of the pool for several statements. While checked out, a connection the server
   * drops reports on the client itself, where nobody listens (the pool only watches idle ones): the
   * listener keeps that from crashing the process; the statement in flight fails with the error anyway.
   */
  async connect(): Promise<{ client: pg.PoolClient; done(broken?: boolean): void }> {
    const client = await this.pool.connect();
    const onError = () => undefined;
    client.on('error', onError);
    return {
      client,
      done(broken = false) {
        client.removeListener('error', onError);
        client.release(broken || undefined);
      },
    };
  }

  /**
   * A connection of its own, not the pool's, LISTENing on `channel` (a constant identifier) for as
   * long as it lives: payloads go to onPayload; onLost is called once if it goes after it opened.
   * TCP keepalive makes a silently dead peer count as lost.
   */
  async listen(channel: string, onPayload: (payload: string) => void, onLost: (err: Error) => void): Promise<{ close(): Promise<void> }> {
    const client = new pg.Client({ ...this.client, application_name: `${this.client.application_name}-listen`, keepAlive: true, keepAliveInitialDelayMillis: 5000 });
    let open = false;
    const lose = (err: Error) => {
      if (!open) return;
      open = false;
      client.end().catch(() => undefined);
      onLost(err);
    };
    client.on('error', lose);
    client.on('end', () => lose(new Error('connection ended')));
    client.on('notification', (m) => {
      if (m.channel === channel && m.payload) onPayload(m.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw this.storageError('listen', err);
    }
    open = true;
    return {
      close: async () => {
        open = false;
        await client.end().catch(() => undefined);
      },
    };
  }

  /** The error a caller sees: typed, naming the store and the database, never the URL. */
  storageError(store: string, err: unknown): StorageWriteError {
    if (err instanceof StorageWriteError) return err;
    return new StorageWriteError(store, Object.assign(new Error(`${describePgError(err)} (PostgreSQL at ${this.where})`), { code: pgErrorCode(err) }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * node-postgres reports a connection that went away without an errno ("Connection terminated
 * unexpectedly", a connect timeout): those get one (ECONNLOST, ETIMEDOUT) so that they count as the
 * database being unavailable, like ECONNREFUSED and the server's own shutdown codes.
 */
export function pgErrorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code !== '') return code;
  const msg = (err as Error)?.message ?? '';
  if (/timeout/i.test(msg)) return 'ETIMEDOUT';
  if (/terminated|Connection ended|not queryable|closed/i.test(msg)) return 'ECONNLOST';
  return 'EIO';
}

/** One line about a driver or server error (SQLSTATE included), without where. */
export function describePgError(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: Array<{ message?: string }> };
  // Connecting to "localhost" tries each address; node reports an AggregateError with an empty message.
  const msg = e?.message || e?.errors?.map((x) => x.message).filter(Boolean).join('; ') || String(err);
  return /^[0-9A-Z]{5}$/.test(e?.code ?? '') ? `${msg} (SQLSTATE ${e.code})` : msg;
}
