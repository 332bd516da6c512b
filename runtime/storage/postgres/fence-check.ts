/**
 * The check a fenced write makes in its own transaction: its lease is still at its epoch, held by its
 * controller and not expired. The row is locked FOR KEY SHARE until the transaction ends, so a
 * takeover (which locks it FOR UPDATE: runtime/cluster/pg-lease.ts) waits for the write to commit, and
 * a write checked after the takeover fails: no write of an old epoch lands after a new epoch began.
 * KEY SHARE rather than SHARE: the holder's renewals (an UPDATE of non-key columns) pass it.
 */
import type pg from 'pg';
import { fenceKey, type Fence } from '../../../plugins/sdk/durable/fence.ts';

const CHECK = `
SELECT name, epoch, holder FROM outpost_leases
WHERE (name, epoch, holder) IN (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])) AND expires_at > now()
ORDER BY name
FOR KEY SHARE`;

/** The keys (fenceKey) of the fences among `fences` that still hold; run inside the write's transaction. */
export async function validFences(c: pg.PoolClient, fences: Iterable<Fence>): Promise<Set<string>> {
  const byKey = new Map<string, Fence>();
  for (const f of fences) byKey.set(fenceKey(f), f);
  if (byKey.size === 0) return new Set();
  const list = [...byKey.values()];
  const r = await c.query<{ name: string; epoch: number; holder: string }>(CHECK, [list.map((f) => f.lease), list.map((f) => f.epoch), list.map((f) => f.holder)]);
  return new Set(r.rows.map((x) => fenceKey({ lease: x.name, epoch: x.epoch, holder: x.holder })));
}
