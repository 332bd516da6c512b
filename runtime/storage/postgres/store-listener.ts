/**
 * How a controller hears of other controllers' commits to the stores it holds in memory: every
 * PgStore commit NOTIFYs STORE_CHANNEL with `<store> <version>` (pg-store.ts), every log append
 * `log:<log> <version>` (pg-log.ts), and this listener,
 * on a connection of its own (a pooled one would drop the LISTEN when released), tells the open
 * store to catch up. Notifications sent while the connection was down are lost, so each (re)connect
 * is followed by a version check of every open store; the same check runs periodically as a safety
 * net (a notification lost any other way costs at most one period of staleness).
 */
import type { Log } from '../../../plugins/sdk/log.ts';

export const STORE_CHANNEL = 'outpost_store';
/** Logs notify on the same channel as `log:<name> <version>` (pg-log.ts); store names have no colon. */
export const LOG_PREFIX = 'log:';

export interface ListenConnection {
  close(): Promise<void>;
}

export interface StoreListenerDeps {
  /** Opens the LISTEN connection; onLost is called once if it goes after it opened. */
  open(onPayload: (payload: string) => void, onLost: (err: Error) => void): Promise<ListenConnection>;
  /** The database's versions of these stores (and logs, named with LOG_PREFIX). */
  versions(names: string[]): Promise<Array<{ name: string; version: number }>>;
  /** Names of the stores open in this process. */
  names(): string[];
  /** The database holds `version` of store `name`. */
  refresh(name: string, version: number): void;
  log: Log;
  /** Safety-net check period; default 30 s. */
  checkMs?: number;
  /** Reconnect backoff bounds; default 250 ms to 5 s. */
  backoffMs?: { min: number; max: number };
}

export class StoreListener {
  private conn: ListenConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private delay: number;
  /** An outage is logged once, when it starts, and once when the listener is back. */
  private away = false;

  constructor(private readonly deps: StoreListenerDeps) {
    this.delay = deps.backoffMs?.min ?? 250;
  }

  /** Resolves once the first connection attempt has finished (connected or retrying). */
  start(): Promise<void> {
    this.timer = setInterval(() => void this.check(), this.deps.checkMs ?? 30_000);
    this.timer.unref();
    return this.connect();
  }

  /** Whether the LISTEN connection is up (for status and tests). */
  get listening(): boolean {
    return this.conn !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.retry);
    const c = this.conn;
    this.conn = undefined;
    await c?.close();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let conn: ListenConnection;
    try {
      conn = await this.deps.open((p) => this.notified(p), (err) => this.lost(err));
    } catch (err) {
      this.lost(err as Error);
      return;
    }
    if (this.closed) return void (await conn.close());
    this.conn = conn;
    this.delay = this.deps.backoffMs?.min ?? 250;
    if (this.away) this.deps.log.info('listening to other controllers\' store changes again; catching up');
    this.away = false;
    // Whatever was committed while nobody listened.
    await this.check();
  }

  private lost(err: Error): void {
    this.conn = undefined;
    if (this.closed) return;
    if (!this.away) this.deps.log.warn({ err: err.message }, 'lost the connection listening to other controllers\' store changes; reconnecting');
    this.away = true;
    const max = this.deps.backoffMs?.max ?? 5000;
    // Jitter, so that controllers cut off together do not reconnect in step.
    this.retry = setTimeout(() => void this.connect(), this.delay * (0.5 + Math.random() / 2));
    this.retry.unref();
    this.delay = Math.min(this.delay * 2, max);
  }

  /** `<store> <version>`; store names have no spaces (backend.ts checks them). */
  private notified(payload: string): void {
    const at = payload.lastIndexOf(' ');
    const version = Number(payload.slice(at + 1));
    if (at <= 0 || !Number.isSafeInteger(version)) return;
    this.deps.refresh(payload.slice(0, at), version);
  }

  /** Refreshes every open store the database holds at a newer version. */
  async check(): Promise<void> {
    const names = this.deps.names();
    if (this.closed || names.length === 0) return;
    try {
      for (const { name, version } of await this.deps.versions(names)) this.deps.refresh(name, version);
    } catch {
      // The database is away: the ping reports it; the next check or reconnect catches up.
    }
  }
}
