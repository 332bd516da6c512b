import { z } from 'zod';
import { openLog, type DurableLog } from '../plugins/sdk/durable/log.ts';
import type { StorageHealth } from '../plugins/sdk/durable/health.ts';
import type { LogFs } from '../plugins/sdk/durable/files.ts';
import { importLegacyJson } from '../plugins/sdk/durable/legacy-json.ts';
import type { Log } from '../plugins/sdk/log.ts';

export interface OutboxItem {
  seq: number;
  plugin: string;
  type: string;
  data: unknown;
  ts: number;
}

/**
 * add = a report; ack = the controller has everything up to `upTo`; meta = the last seq handed out
 * (never reused, so the controller's dedup stays sound across restarts) and the count dropped.
 */
type OutboxRecord = ({ t: 'add' } & OutboxItem) | { t: 'ack'; upTo: number } | { t: 'meta'; seq: number; dropped: number };

const OutboxRecordSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('add'), seq: z.number().int().positive(), plugin: z.string(), type: z.string(), data: z.unknown(), ts: z.number() }),
  z.object({ t: z.literal('ack'), upTo: z.number().int().nonnegative() }),
  z.object({ t: z.literal('meta'), seq: z.number().int().nonnegative(), dropped: z.number().int().nonnegative() }),
]);

/** A small log: reports are small and acked within a heartbeat or two, so compaction is cheap. */
const COMPACT_AFTER = 1024 * 1024;

/**
 * Reports waiting for the controller's ack, on disk before report() resolves. An append log (a
 * report costs one line, not a rewrite of every waiting report); when the disk is full, report()
 * fails with a StorageWriteError and reports are taken again as soon as space returns.
 */
export class AgentOutbox {
  private items: OutboxItem[] = [];
  private seq = 0;
  private droppedCount = 0;
  private store!: DurableLog<OutboxRecord>;

  private constructor(
    private readonly max: number,
    private readonly log: Log | undefined,
  ) {}

  /** `readOnly`: inspect the outbox of a stopped (or idle) agent without changing it (tests, tools). */
  static async open(dataDir: string, max: number, opts: { log?: Log; health?: StorageHealth; readOnly?: boolean; fs?: LogFs } = {}): Promise<AgentOutbox> {
    const ob = new AgentOutbox(max, opts.log);
    ob.store = await openLog('outbox', OutboxRecordSchema as z.ZodType<OutboxRecord>, {
      dir: dataDir,
      log: opts.log,
      health: opts.health,
      readOnly: opts.readOnly,
      fs: opts.fs,
      compactAfterBytes: COMPACT_AFTER,
      load: (r) => ob.apply(r),
      snapshot: function* () {
        yield { t: 'meta', seq: ob.seq, dropped: ob.droppedCount };
        for (const it of ob.items) yield { t: 'add', ...it };
      },
    });
    if (!opts.readOnly) {
      // Before the log, the outbox was one JSON file rewritten per report.
      await importLegacyJson<{ seq?: number; items?: OutboxItem[]; dropped?: number }>(dataDir, 'outbox.json', async (old) => {
        if (ob.seq > 0) return;
        for (const it of old.items ?? []) ob.apply({ t: 'add', ...it });
        ob.apply({ t: 'meta', seq: old.seq ?? 0, dropped: old.dropped ?? 0 });
        await ob.store.compact();
      });
    }
    return ob;
  }

  private apply(r: OutboxRecord): void {
    if (r.t === 'add') {
      const { t: _t, ...item } = r;
      this.items.push(item);
      this.seq = Math.max(this.seq, item.seq);
      // Oldest first out when full: the same rule on every replay gives the same result.
      if (this.items.length > this.max) {
        const n = this.items.length - this.max;
        this.items.splice(0, n);
        this.droppedCount += n;
      }
    } else if (r.t === 'ack') {
      let i = 0;
      while (i < this.items.length && this.items[i].seq <= r.upTo) i++;
      if (i) this.items.splice(0, i);
    } else {
      this.seq = Math.max(this.seq, r.seq);
      this.droppedCount = Math.max(this.droppedCount, r.dropped);
    }
  }

  /** Queues a report; resolves once it is on disk. Rejects (and keeps nothing) when it cannot be written. */
  async add(plugin: string, type: string, data: unknown): Promise<OutboxItem> {
    const rec: OutboxRecord = { t: 'add', seq: this.seq + 1, plugin, type, data, ts: Date.now() };
    this.apply(rec);
    const { t: _t, ...item } = rec;
    try {
      await this.store.append([rec]);
    } catch (err) {
      // Not on disk, so not queued: the seq stays used (a gap is harmless, a reuse would not be).
      const i = this.items.findIndex((x) => x.seq === item.seq);
      if (i >= 0) this.items.splice(i, 1);
      throw err;
    }
    return item;
  }

  /**
   * Forgets everything up to seq (acked, or already applied as the welcome says). Never throws: if
   * the record cannot be written, the controller's dedup makes the replay after a restart harmless.
   */
  async ack(seq: number): Promise<void> {
    if (this.items.length === 0 || this.items[0].seq > seq) return;
    this.apply({ t: 'ack', upTo: seq });
    await this.store.append([{ t: 'ack', upTo: seq }]).catch((err) => this.log?.warn({ err: (err as Error).message }, 'could not record an ack; acknowledged reports may be replayed after a restart'));
  }

  /** Never hand out a seq the controller has already applied (e.g. after the state dir was restored from an old backup). */
  async bumpSeq(atLeast: number): Promise<void> {
    if (this.seq >= atLeast) return;
    this.seq = atLeast;
    // In memory it holds already; on disk the next report carries a seq above it anyway.
    await this.store.append([{ t: 'meta', seq: atLeast, dropped: this.droppedCount }]).catch((err) => this.log?.warn({ err: (err as Error).message }, 'could not record the seq floor'));
  }

  /** Items with seq greater than after, oldest first, at most limit. */
  after(after: number, limit: number): OutboxItem[] {
    const out: OutboxItem[] = [];
    for (const it of this.items) {
      if (it.seq > after) {
        out.push(it);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** The last seq handed out. */
  lastSeq(): number {
    return this.seq;
  }

  size(): number {
    return this.items.length;
  }

  dropped(): number {
    return this.droppedCount;
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
