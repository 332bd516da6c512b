/**
 * A small owner of a durable log for tests: counters whose `inc` record is deliberately not
 * idempotent, so a record replayed twice (or lost) shows in the values.
 */
import { pino } from 'pino';
import { z } from 'zod';
import { openLog, type DurableLog, type LogOptions } from '../../plugins/sdk/durable/log.ts';

export const Rec = z.discriminatedUnion('op', [
  z.object({ op: z.literal('set'), k: z.string(), v: z.unknown() }),
  z.object({ op: z.literal('inc'), k: z.string() }),
  z.object({ op: z.literal('del'), k: z.string() }),
]);
export type Rec = z.infer<typeof Rec>;

export class Counters {
  readonly values = new Map<string, unknown>();
  log!: DurableLog<Rec>;

  apply(r: Rec): void {
    if (r.op === 'set') this.values.set(r.k, r.v);
    else if (r.op === 'inc') this.values.set(r.k, ((this.values.get(r.k) as number) ?? 0) + 1);
    else this.values.delete(r.k);
  }

  /** Applies in memory first, then appends: the contract snapshot() relies on. */
  change(...recs: Rec[]): Promise<void> {
    for (const r of recs) this.apply(r);
    return this.log.append(recs);
  }

  static async open(dir: string, opts: Partial<LogOptions<Rec>> = {}): Promise<Counters> {
    const c = new Counters();
    c.log = await openLog('counters', Rec, {
      dir,
      load: (r) => c.apply(r),
      reset: () => c.values.clear(),
      snapshot: () => [...c.values].map(([k, v]): Rec => ({ op: 'set', k, v })),
      fsync: 'none',
      log: opts.log ?? pino<never>({ level: 'silent' }),
      ...opts,
    });
    return c;
  }
}
