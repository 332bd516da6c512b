/**
 * The singleton lease as a row of `outpost_leases` (schema.ts, migration 3). Every change is one
 * statement judged by the database's clock alone, so controllers whose clocks disagree still agree on
 * who holds it.
 *
 * Locks: fenced writes lock the row FOR KEY SHARE (runtime/storage/postgres/fence-check.ts). A
 * takeover locks it FOR UPDATE first, so it waits for the writes in flight, and they fail once it has
 * happened. A renewal (an UPDATE of non-key columns) does not conflict with KEY SHARE: the holder's
 * renewals never queue behind its own singleton writes, which under load made them late and the lease
 * change hands while its holder was alive.
 *
 * The lease's statements go through a small pool of their own (Database.side), for the same reason:
 * a main pool busy with store work kept renewals waiting for a connection.
 */
import type { Database } from '../storage/postgres/database.ts';
import type { LeaseBackend, LeaseRow } from './lease.ts';

const COLS = `holder, epoch, (extract(epoch FROM expires_at) * 1000)::float8 AS expires_at`;
const TTL = `now() + make_interval(secs => $3::float8 / 1000)`;

type Raw = { holder: string; epoch: number; expires_at: number };
const row = (r: Raw | undefined): LeaseRow | undefined => r && { holder: r.holder, epoch: r.epoch, expiresAt: r.expires_at };

export class PgLeaseBackend implements LeaseBackend {
  private readonly db: Database;

  /** ttlMs bounds how long a lease statement may take: one slower than half a term is a failure. */
  constructor(db: Database, ttlMs = 6000) {
    this.db = db.side('lease', 2, Math.max(1000, Math.floor(ttlMs / 2)));
  }

  async acquire(name: string, holder: string, ttlMs: number): Promise<LeaseRow | undefined> {
    return this.db.tx(async (c) => {
      // Only a lease this holder may take is locked: others' tries leave a held lease's writers alone.
      await c.query('SELECT 1 FROM outpost_leases WHERE name = $1 AND (holder = $2 OR expires_at <= now()) FOR UPDATE', [name, holder]);
      const r = await c.query<Raw>(
        `INSERT INTO outpost_leases AS l (name, holder, epoch, expires_at) VALUES ($1, $2, 1, ${TTL})
         ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
         WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
         RETURNING ${COLS}`,
        [name, holder, ttlMs],
      );
      return row(r.rows[0]);
    });
  }

  async renew(name: string, holder: string, epoch: number, ttlMs: number): Promise<LeaseRow | undefined> {
    const r = await this.db.query<Raw>(`UPDATE outpost_leases SET expires_at = ${TTL} WHERE name = $1 AND holder = $2 AND epoch = $4 AND expires_at > now() RETURNING ${COLS}`, [name, holder, ttlMs, epoch]);
    return row(r.rows[0]);
  }

  async release(name: string, holder: string, epoch: number): Promise<void> {
    await this.db.query('UPDATE outpost_leases SET expires_at = now() WHERE name = $1 AND holder = $2 AND epoch = $3', [name, holder, epoch]);
  }

  async read(name: string): Promise<LeaseRow | undefined> {
    const r = await this.db.query<Raw>(`SELECT ${COLS} FROM outpost_leases WHERE name = $1`, [name]);
    return row(r.rows[0]);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
