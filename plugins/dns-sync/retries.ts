/**
 * Failed line writes in the SDK's durable due-time queue: one item per line (its id derived from the
 * line's key, so a line is never queued twice), due after the writer's backoff, leased by the retry
 * pass, acked once the line is right, failed again with a longer backoff otherwise. A line a full
 * pass gets right leaves the queue too. Nothing is dropped: an item leaves only when its line is
 * right or no longer managed.
 */
import { createHash } from 'node:crypto';
import { z, type DueQueue, type Leased } from '../sdk/index.ts';
import { LINES } from './lines.ts';
import type { RetryItem } from './writer.ts';

export const retryItemSchema = z.object({
  key: z.string(),
  service: z.string(),
  provider: z.string(),
  line: z.enum(LINES),
  recordType: z.enum(['A', 'AAAA']),
  attempt: z.number().int().nonnegative(),
  error: z.string(),
  retryInMs: z.number().nonnegative(),
});

/** A line waiting for its next attempt, as the status and the panel show it. */
export type PendingWrite = RetryItem & { dueAt: number };

/** Leases run out after this: a retry pass through a provider that times out takes a while. */
const LEASE_MS = 5 * 60_000;

export class RetryQueue {
  private readonly ids = new Map<string, string>();
  private pendingByKey = new Map<string, PendingWrite>();
  private total = 0;

  constructor(private readonly queue: DueQueue<RetryItem>) {}

  /** Queue ids are at most 200 characters; line keys can be longer (a 253-character domain). */
  idOf(key: string): string {
    let id = this.ids.get(key);
    if (!id) this.ids.set(key, (id = `line-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`));
    return id;
  }

  /** From the copy the last refresh read: the surfaces answer synchronously, the queue (PostgreSQL) may not. */
  pending(key: string): PendingWrite | null {
    return this.pendingByKey.get(key) ?? null;
  }

  count(): number {
    return this.total;
  }

  /** Reads what the queue holds for these lines and how much it holds in all, for pending() and count(). */
  async refresh(keys: Iterable<string>): Promise<void> {
    const found = await Promise.all([...keys].map(async (key) => [key, await this.queue.get(this.idOf(key))] as const));
    const c = await this.queue.counts();
    this.pendingByKey = new Map(found.flatMap(([key, q]) => (q ? [[key, { ...q.item, attempt: failedAttempts(q), error: q.lastError ?? q.item.error, dueAt: q.dueAt }] as const] : [])));
    this.total = c.pending + c.leased;
  }

  /** Every item due now, leased for the retry pass. */
  leaseDue(): Promise<Leased<RetryItem>[]> {
    return this.queue.lease(100_000, LEASE_MS);
  }

  onReady(fn: () => void): () => void {
    return this.queue.onReady(fn);
  }

  nextDueAt(): Promise<number | undefined> {
    return this.queue.nextDueAt();
  }

  /**
   * After a pass: each failed line is queued (or, when leased for this pass, failed again with its
   * next backoff); every other line the pass acted on leaves the queue. Resolves with the lines that
   * entered the queue now (a failure streak starts: worth an event).
   */
  async settle(acted: Iterable<string>, failures: readonly RetryItem[], leased: ReadonlyMap<string, Leased<RetryItem>>, now: number): Promise<RetryItem[]> {
    const failed = new Map(failures.map((f) => [f.key, f]));
    const fresh: RetryItem[] = [];
    const work: Promise<unknown>[] = [];
    for (const f of failed.values()) {
      const held = leased.get(f.key);
      if (held) work.push(this.queue.fail(held.id, f.retryInMs, { token: held.token, error: f.error }));
      else if (!(await this.queue.get(this.idOf(f.key)))) fresh.push(f);
    }
    if (fresh.length) work.push(this.queue.scheduleMany(fresh.map((f) => ({ item: f, dueAt: now + f.retryInMs, id: this.idOf(f.key) }))));
    const done = new Set([...acted, ...leased.keys()]);
    for (const key of done) {
      if (failed.has(key)) continue;
      const held = leased.get(key);
      if (held) work.push(this.queue.ack(held.id, held.token));
      else if (await this.queue.get(this.idOf(key))) work.push(this.queue.cancel(this.idOf(key)));
    }
    await Promise.all(work);
    return fresh;
  }
}

/** The item holds the count at its first failure; the queue counts the retries that failed since. */
export function failedAttempts(q: { item: RetryItem; attempts: number }): number {
  return q.item.attempt + q.attempts;
}
