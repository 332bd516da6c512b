import { importLegacyLines, onRemoteAppend, z, type ControllerContext, type DurableLog } from '../sdk/index.ts';
import type { HistoryEntry } from './state.ts';
import type { Spec } from './spec.ts';

const Entry = z.looseObject({ g: z.string(), round: z.number(), decidedAt: z.number(), degraded: z.boolean(), nodes: z.array(z.string()), missing: z.array(z.string()), records: z.array(z.looseObject({ record_id: z.string() })) }) as unknown as z.ZodType<HistoryEntry>;

/**
 * Decided rounds for /api/v1/prober/results, on the SDK's durable log (`prober.history.*`): one record
 * per decided round, the retention window in memory, and compaction keeps just that window.
 * Appends share the next fsync: a round lost on a power cut is only missing from the results listing.
 */
export class History {
  private entries: HistoryEntry[] = [];
  private readonly last = new Map<string, HistoryEntry>();
  private log!: DurableLog<HistoryEntry>;

  private constructor(private readonly keepMs: number) {}

  static async open(ctx: ControllerContext<Spec>, keepMs: number): Promise<History> {
    const h = new History(keepMs);
    const cutoff = Date.now() - keepMs;
    h.log = await ctx.openLog('history', Entry, {
      // Also the rounds the lease holder decides when it is another controller (PostgreSQL).
      load: (e) => e.decidedAt >= cutoff && h.remember([e]),
      reset: () => h.forget(),
      snapshot: () => h.window(),
    });
    await h.importOld(ctx.dataDir, cutoff);
    return h;
  }

  /** Keeps the window trimmed as rounds other controllers decided come in; returns the unsubscribe. */
  follow(): () => void {
    return onRemoteAppend(this.log, () => this.trim(Date.now()));
  }

  add(entries: HistoryEntry[], now = Date.now()): Promise<void> {
    this.remember(entries);
    this.trim(now);
    return entries.length ? this.log.append(entries, { sync: false }) : Promise.resolve();
  }

  query(filter: (e: HistoryEntry) => boolean, limit: number): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    for (let i = this.entries.length - 1; i >= 0 && out.length < limit; i--) if (filter(this.entries[i])) out.push(this.entries[i]);
    return out.reverse();
  }

  latest(g: string): HistoryEntry | undefined {
    return this.last.get(g);
  }

  private remember(entries: HistoryEntry[]): void {
    this.entries.push(...entries);
    for (const e of entries) this.last.set(e.g, e);
  }

  private forget(): void {
    this.entries = [];
    this.last.clear();
  }

  private trim(now: number): void {
    const cutoff = now - this.keepMs;
    let i = 0;
    while (i < this.entries.length && this.entries[i].decidedAt < cutoff) i++;
    if (i) this.entries.splice(0, i);
  }

  /** What compaction keeps: the retention window. */
  private window(): HistoryEntry[] {
    this.trim(Date.now());
    return this.entries;
  }

  /** The JSON-lines file of older releases: its window carried into the log once, then set aside. */
  private importOld(dir: string, cutoff: number): Promise<void> {
    return importLegacyLines(dir, 'prober-history.jsonl', async (records) => {
      const old: HistoryEntry[] = [];
      for (const r of records) {
        const e = Entry.safeParse(r);
        if (e.success && e.data.decidedAt >= cutoff) old.push(e.data);
      }
      // A log that holds entries already took them (an import cut short before the rename).
      if (this.entries.length === 0 && old.length) {
        this.remember(old);
        await this.log.append(old);
      }
    });
  }
}
