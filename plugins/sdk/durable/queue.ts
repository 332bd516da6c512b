/**
 * The due-time queue: durable items that become available at a time, leased to a worker for a while,
 * then acknowledged, failed (back in the queue after a backoff) or, when the lease runs out, available
 * again. Built on the durable log (records s = scheduled, f = failed/rescheduled, d = done/cancelled,
 * m = the last seq handed out, so ids are never reused after the items that had them are gone, and
 * the owner's checkpoint)
 * with an in-memory timer heap. Leases live in memory only: after a crash every leased item is simply
 * available again, which is what an expired lease means anyway (delivery is at least once).
 *
 * Reads and leases are async because the queue may live in a database shared by several processes
 * (the PostgreSQL queue leases with FOR UPDATE SKIP LOCKED): the answer can only come from there.
 *
 * Ordering per key: items sharing a `key` form a FIFO lane (in the order they were scheduled); only
 * the lane's first item can be leased, and only once it is due, so a failing head holds its lane back
 * (a webhook subscription's deliveries stay in order) while other lanes go on. Items without a key
 * are independent.
 *
 * Shaped for its users: webhooks (a lane per subscription, fail with backoff), prober callbacks
 * (a lane per app URL), jobs (100k delayed tasks, lease to a node, `fail(id, step)` between attempts,
 * `renew` while a long task runs, tokens so a late answer from an expired lease changes nothing) and
 * dns-sync (a lane per record, retried writes).
 */
import { z } from 'zod';
import { openLog, type DurableLog, type LogOptions } from './log.ts';
import { MinHeap } from './heap.ts';
import { mountedAt } from './backend.ts';

export interface ScheduleOptions {
  /** Items sharing a key are leased one at a time, in the order they were scheduled. */
  key?: string;
  /** Your own id (e.g. a task number); scheduling an id the queue holds returns it without a second item. */
  id?: string;
}

export interface QueuedItem<T> {
  id: string;
  key?: string;
  item: T;
  /** Epoch ms from which the item may be leased. */
  dueAt: number;
  /** Failed attempts so far. */
  attempts: number;
  lastError?: string;
  createdAt: number;
}

export interface Leased<T> extends QueuedItem<T> {
  /** Pass to ack/fail/renew: once the lease has run out and the item was leased again, the old token is refused. */
  token: number;
  leasedUntil: number;
}

export interface DueQueue<T> {
  /** Stores an item; resolves with its id once it is on disk (only then can it be leased). */
  schedule(item: T, dueAt: number, opts?: ScheduleOptions): Promise<string>;
  /**
   * Many at once, in one write. `checkpoint`: a position of the owner's (e.g. the last event of a log
   * it turns into items) stored in the same write, so "these items are queued" and "the source is
   * handled up to here" land together or not at all; read back with checkpoint(). `sync: false`: for
   * items the owner rebuilds from its own fsynced source after a power cut (from the checkpoint on),
   * the write shares the next fsync (a process crash still keeps them).
   */
  scheduleMany(entries: Array<{ item: T; dueAt: number } & ScheduleOptions>, opts?: { checkpoint?: number; sync?: boolean }): Promise<string[]>;
  /** The highest checkpoint stored (0 before any). */
  checkpoint(): number;
  /** Removes an item, leased or not; false if the queue does not hold it. */
  cancel(id: string): Promise<boolean>;
  /** Up to n items that are due, each leased for ms: nobody else gets them until ack, fail or expiry. */
  lease(n: number, ms: number): Promise<Leased<T>[]>;
  /** Extends a lease still held (a long task); false if the lease was lost. */
  renew(id: string, token: number, ms: number): Promise<boolean>;
  /** Done: the item leaves the queue. False if it is gone or (with a token) leased to someone else since. */
  ack(id: string, token?: number): Promise<boolean>;
  /** Not done: due again after backoffMs, attempts + 1, its lane held back until then. */
  fail(id: string, backoffMs: number, opts?: { token?: number; error?: string }): Promise<boolean>;
  /** Moves the due time of an item that is not leased (run now, or later), attempts unchanged; false if it is gone or leased. */
  reschedule(id: string, dueAt: number): Promise<boolean>;
  get(id: string): Promise<QueuedItem<T> | undefined>;
  /** Every item stored (leased ones included), in the order they were scheduled: for listings. */
  items(): Promise<QueuedItem<T>[]>;
  counts(): Promise<{ pending: number; leased: number }>;
  /** When the next item becomes due (or a lease runs out); undefined when nothing waits. */
  nextDueAt(): Promise<number | undefined>;
  /** Called when items may have become leasable: lease then, and again whenever you have room. */
  onReady(fn: () => void): () => void;
  /** Rewrites the queue's storage to what it holds now (done by itself as it grows). */
  compact(): Promise<void>;
  close(): Promise<void>;
}

export type QueueOptions = Omit<LogOptions<never>, 'load' | 'snapshot'>;

interface Entry<T> {
  id: string;
  seq: number;
  key: string | undefined;
  item: T;
  dueAt: number;
  attempts: number;
  lastError: string | undefined;
  createdAt: number;
  /** On disk: only then leasable. */
  durable: boolean;
  removed: boolean;
  leasedUntil: number;
  token: number;
}

/** A lane: its entries in schedule order; `head` skips the ones already gone. */
interface Lane<T> {
  entries: Entry<T>[];
  head: number;
}

/** The heap holds entries at the time they become leasable; an entry whose time has changed is stale and skipped. */
interface Slot<T> {
  at: number;
  e: Entry<T>;
}

type Rec<T> = { t: 'm'; seq: number; cp?: number } | { t: 's'; id: string; seq: number; key?: string; due: number; item: T; att: number; err?: string; at: number } | { t: 'f'; id: string; due: number; att: number; err?: string } | { t: 'd'; id: string };

const MAX_ID = 200;
/** Records whose loss on a power cut only repeats work (an ack, a failure's backoff) share the next fsync. */
const LAZY = { sync: false } as const;

export function checkDueAt(dueAt: number): void {
  if (!Number.isFinite(dueAt)) throw new Error(`dueAt must be a time in epoch ms, got ${dueAt}`);
}

export function checkCheckpoint(cp: number | undefined): void {
  if (cp !== undefined && !Number.isFinite(cp)) throw new Error(`checkpoint must be a number, got ${cp}`);
}

/** Throws naming what is wrong with an entry to schedule (every queue backend checks the same). */
export function checkSchedule(s: { dueAt: number } & ScheduleOptions): void {
  checkDueAt(s.dueAt);
  if (s.id !== undefined && (typeof s.id !== 'string' || s.id === '' || s.id.length > MAX_ID)) throw new Error(`id must be 1-${MAX_ID} characters`);
  if (s.key !== undefined && (typeof s.key !== 'string' || s.key.length > MAX_ID)) throw new Error(`key must be a string of at most ${MAX_ID} characters`);
}
const MAX_TIMER = 2 ** 31 - 1;

/** The records of a queue's log: scheduled, failed (rescheduled), done, and the last seq handed out. */
function queueRecords<T>(itemSchema: z.ZodType<T>): z.ZodType<Rec<T>> {
  return z.discriminatedUnion('t', [
    z.object({ t: z.literal('s'), id: z.string(), seq: z.number().int(), key: z.string().optional(), due: z.number(), item: itemSchema, att: z.number().int(), err: z.string().optional(), at: z.number() }),
    z.object({ t: z.literal('f'), id: z.string(), due: z.number(), att: z.number().int(), err: z.string().optional() }),
    z.object({ t: z.literal('d'), id: z.string() }),
    z.object({ t: z.literal('m'), seq: z.number().int(), cp: z.number().optional() }),
  ]) as unknown as z.ZodType<Rec<T>>;
}

export async function openQueue<T>(name: string, itemSchema: z.ZodType<T>, opts: QueueOptions): Promise<DueQueue<T>> {
  const mounted = mountedAt(opts.dir);
  if (mounted) return mounted.backend.openQueue(mounted.name(name), itemSchema, opts);
  const q = new FileQueue<T>();
  q.log = await openLog(name, queueRecords(itemSchema), { ...opts, kind: 'queue', load: (r) => q.replay(r), snapshot: () => q.snapshot() });
  q.loaded();
  return q;
}

/** A queue's items with their schedule order, the last seq it handed out and its checkpoint: what moves between backends. */
export interface QueueContents<T> {
  seq: number;
  checkpoint: number;
  items: Array<QueuedItem<T> & { seq: number }>;
}

/** What a stopped queue's files hold (store export/import); leases are not kept, as at any open. */
export async function readQueueFiles(name: string, dir: string): Promise<QueueContents<unknown>> {
  const q = new FileQueue<unknown>();
  q.log = await openLog(name, queueRecords(z.unknown()), { dir, readOnly: true, load: (r) => q.replay(r), snapshot: () => [] });
  await q.log.close();
  return q.contents();
}

/** Writes a queue's files from contents (into a dir that holds no such queue yet). */
export async function writeQueueFiles(name: string, dir: string, contents: QueueContents<unknown>): Promise<void> {
  const records: Array<Rec<unknown>> = [{ t: 'm', seq: contents.seq, ...(contents.checkpoint ? { cp: contents.checkpoint } : {}) }];
  for (const it of contents.items) records.push({ t: 's', id: it.id, seq: it.seq, ...(it.key !== undefined ? { key: it.key } : {}), due: it.dueAt, item: it.item, att: it.attempts, ...(it.lastError !== undefined ? { err: it.lastError } : {}), at: it.createdAt });
  const log = await openLog(name, queueRecords(z.unknown()), { dir, kind: 'queue', load: () => undefined, snapshot: () => records });
  try {
    await log.append(records);
  } finally {
    await log.close();
  }
}

const readyAt = (e: Entry<unknown>) => (e.leasedUntil > 0 ? e.leasedUntil : e.dueAt);

class FileQueue<T> implements DueQueue<T> {
  log!: DurableLog<Rec<T>>;
  private readonly entries = new Map<string, Entry<T>>();
  private readonly lanes = new Map<string, Lane<T>>();
  private heap = new MinHeap<Slot<T>>(before);
  private seq = 0;
  private cp = 0;
  private leased = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();
  private closed = false;

  // ---- load ----

  replay(r: Rec<T>): void {
    if (r.t === 's') {
      this.entries.set(r.id, { id: r.id, seq: r.seq, key: r.key, item: r.item, dueAt: r.due, attempts: r.att, lastError: r.err, createdAt: r.at, durable: true, removed: false, leasedUntil: 0, token: 0 });
      this.seq = Math.max(this.seq, r.seq);
    } else if (r.t === 'f') {
      const e = this.entries.get(r.id);
      if (e) Object.assign(e, { dueAt: r.due, attempts: r.att, lastError: r.err });
    } else if (r.t === 'd') {
      this.entries.delete(r.id);
    } else {
      this.seq = Math.max(this.seq, r.seq);
      if (r.cp !== undefined) this.cp = Math.max(this.cp, r.cp);
    }
  }

  /** Lanes and the heap are built once, after the last record: O(n), not a heap push per record. */
  loaded(): void {
    const slots: Slot<T>[] = [];
    for (const e of this.entries.values()) {
      if (e.key === undefined) slots.push({ at: e.dueAt, e });
      else this.laneOf(e.key).entries.push(e);
    }
    for (const lane of this.lanes.values()) {
      lane.entries.sort((a, b) => a.seq - b.seq);
      slots.push({ at: lane.entries[0].dueAt, e: lane.entries[0] });
    }
    this.heap = new MinHeap(before, slots);
    this.arm();
  }

  contents(): QueueContents<T> {
    return { seq: this.seq, checkpoint: this.cp, items: [...this.entries.values()].sort((a, b) => a.seq - b.seq).map((e) => ({ ...view(e), seq: e.seq })) };
  }

  *snapshot(): Iterable<Rec<T>> {
    yield { t: 'm', seq: this.seq, ...(this.cp ? { cp: this.cp } : {}) };
    for (const e of this.entries.values()) yield sRecord(e);
  }

  // ---- API ----

  schedule(item: T, dueAt: number, opts: ScheduleOptions = {}): Promise<string> {
    return this.scheduleMany([{ item, dueAt, ...opts }]).then((ids) => ids[0]);
  }

  async scheduleMany(list: Array<{ item: T; dueAt: number } & ScheduleOptions>, opts: { checkpoint?: number; sync?: boolean } = {}): Promise<string[]> {
    if (this.closed) throw new Error('queue is closed');
    checkCheckpoint(opts.checkpoint);
    const cp = opts.checkpoint !== undefined && opts.checkpoint > this.cp ? opts.checkpoint : undefined;
    const ids: string[] = [];
    const fresh: Entry<T>[] = [];
    const now = Date.now();
    for (const s of list) {
      checkSchedule(s);
      const known = s.id !== undefined ? this.entries.get(s.id) : undefined;
      if (known) {
        ids.push(known.id);
        continue;
      }
      const seq = ++this.seq;
      const e: Entry<T> = { id: s.id ?? `q_${seq.toString(36)}`, seq, key: s.key, item: s.item, dueAt: s.dueAt, attempts: 0, lastError: undefined, createdAt: now, durable: false, removed: false, leasedUntil: 0, token: 0 };
      // A generated id may equal one given earlier by a caller: the caller's keeps it.
      if (this.entries.has(e.id)) e.id = `q_${seq.toString(36)}_${now.toString(36)}`;
      this.entries.set(e.id, e);
      if (e.key !== undefined) this.laneOf(e.key).entries.push(e);
      fresh.push(e);
      ids.push(e.id);
    }
    if (fresh.length === 0 && cp === undefined) return ids;
    const records = fresh.map(sRecord);
    if (cp !== undefined) records.push({ t: 'm', seq: this.seq, cp });
    try {
      await this.log.append(records, opts.sync === false ? LAZY : {});
    } catch (err) {
      // Not on disk, so not scheduled.
      for (const e of fresh) this.drop(e);
      throw err;
    }
    if (cp !== undefined) this.cp = Math.max(this.cp, cp);
    for (const e of fresh) {
      if (e.removed) continue; // cancelled while being written
      e.durable = true;
      if (this.isHead(e)) this.heap.push({ at: readyAt(e), e });
    }
    this.arm();
    return ids;
  }

  async cancel(id: string): Promise<boolean> {
    const e = this.entries.get(id);
    if (!e) return false;
    this.drop(e);
    this.arm();
    // Also while its schedule record is being written: records land in order, so this one comes after.
    await this.log.append([{ t: 'd', id }]);
    return true;
  }

  lease(n: number, ms: number): Promise<Leased<T>[]> {
    return Promise.resolve(this.leaseNow(n, ms));
  }

  private leaseNow(n: number, ms: number): Leased<T>[] {
    const now = Date.now();
    const out: Leased<T>[] = [];
    while (out.length < n) {
      const top = this.validTop();
      if (!top || top.at > now) break;
      this.heap.pop();
      const e = top.e;
      if (e.leasedUntil === 0) this.leased += 1;
      e.token += 1;
      e.leasedUntil = now + ms;
      this.heap.push({ at: e.leasedUntil, e });
      out.push(leasedView(e));
    }
    this.arm();
    return out;
  }

  async renew(id: string, token: number, ms: number): Promise<boolean> {
    const e = this.entries.get(id);
    if (!e || e.token !== token || e.leasedUntil === 0) return false;
    e.leasedUntil = Date.now() + ms;
    this.heap.push({ at: e.leasedUntil, e });
    return true;
  }

  async ack(id: string, token?: number): Promise<boolean> {
    const e = this.entries.get(id);
    if (!e || (token !== undefined && e.token !== token)) return false;
    this.drop(e);
    this.arm();
    await this.log.append([{ t: 'd', id }], LAZY);
    return true;
  }

  async fail(id: string, backoffMs: number, opts: { token?: number; error?: string } = {}): Promise<boolean> {
    const e = this.entries.get(id);
    if (!e || !e.durable || (opts.token !== undefined && e.token !== opts.token)) return false;
    if (e.leasedUntil > 0) this.leased -= 1;
    e.leasedUntil = 0;
    e.attempts += 1;
    e.dueAt = Date.now() + Math.max(0, backoffMs);
    e.lastError = opts.error?.slice(0, 1000);
    this.heap.push({ at: e.dueAt, e });
    this.arm();
    await this.log.append([{ t: 'f', id, due: e.dueAt, att: e.attempts, ...(e.lastError !== undefined ? { err: e.lastError } : {}) }], LAZY);
    return true;
  }

  async reschedule(id: string, dueAt: number): Promise<boolean> {
    checkDueAt(dueAt);
    const e = this.entries.get(id);
    if (!e || !e.durable || e.leasedUntil > 0) return false;
    e.dueAt = dueAt;
    this.heap.push({ at: e.dueAt, e });
    this.arm();
    await this.log.append([{ t: 'f', id, due: e.dueAt, att: e.attempts, ...(e.lastError !== undefined ? { err: e.lastError } : {}) }], LAZY);
    return true;
  }

  async get(id: string): Promise<QueuedItem<T> | undefined> {
    const e = this.entries.get(id);
    return e && view(e);
  }

  checkpoint(): number {
    return this.cp;
  }

  async items(): Promise<QueuedItem<T>[]> {
    // The map keeps insertion order, which is schedule order (seq), also after a reload.
    const out: QueuedItem<T>[] = [];
    for (const e of this.entries.values()) if (e.durable) out.push(view(e));
    return out;
  }

  async counts(): Promise<{ pending: number; leased: number }> {
    return { pending: this.entries.size - this.leased, leased: this.leased };
  }

  async nextDueAt(): Promise<number | undefined> {
    return this.validTop()?.at;
  }

  onReady(fn: () => void): () => void {
    this.listeners.add(fn);
    this.arm();
    return () => this.listeners.delete(fn);
  }

  compact(): Promise<void> {
    return this.log.compact();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.listeners.clear();
    await this.log.close();
  }

  // ---- internals ----

  private laneOf(key: string): Lane<T> {
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { entries: [], head: 0 }));
    return lane;
  }

  private isHead(e: Entry<T>): boolean {
    if (e.key === undefined) return true;
    const lane = this.lanes.get(e.key);
    return lane !== undefined && lane.entries[lane.head] === e;
  }

  /** Takes an entry out of memory; its lane's next entry becomes leasable. */
  private drop(e: Entry<T>): void {
    if (e.removed) return;
    e.removed = true;
    if (e.leasedUntil > 0) this.leased -= 1;
    e.leasedUntil = 0;
    this.entries.delete(e.id);
    if (e.key === undefined) return;
    const lane = this.lanes.get(e.key)!;
    const wasHead = lane.entries[lane.head] === e;
    while (lane.head < lane.entries.length && lane.entries[lane.head].removed) lane.head++;
    if (lane.head === lane.entries.length) {
      this.lanes.delete(e.key);
      return;
    }
    // Drop the consumed front now and then, so a long-lived lane does not keep every entry it ever had.
    if (lane.head > 1024 && lane.head * 2 > lane.entries.length) {
      lane.entries = lane.entries.slice(lane.head);
      lane.head = 0;
    }
    const next = lane.entries[lane.head];
    if (wasHead && next.durable) this.heap.push({ at: readyAt(next), e: next });
  }

  /** The heap's top once stale slots (entries gone, no longer a lane head, or rescheduled) are discarded. */
  private validTop(): Slot<T> | undefined {
    for (;;) {
      const top = this.heap.peek();
      if (!top) return undefined;
      const e = top.e;
      if (!e.removed && e.durable && top.at === readyAt(e) && this.isHead(e)) return top;
      this.heap.pop();
    }
  }

  /**
   * One timer, for the earliest slot. When it fires the listeners are told and it is not set again
   * until something changes (a lease, an ack, a schedule...): a consumer with no room does not spin it.
   */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed || this.listeners.size === 0) return;
    const top = this.validTop();
    if (!top) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        for (const fn of this.listeners) fn();
      },
      Math.min(MAX_TIMER, Math.max(0, top.at - Date.now())),
    );
    this.timer.unref();
  }
}

function before<T>(a: Slot<T>, b: Slot<T>): boolean {
  return a.at < b.at || (a.at === b.at && a.e.seq < b.e.seq);
}

function sRecord<T>(e: Entry<T>): Rec<T> {
  return { t: 's', id: e.id, seq: e.seq, ...(e.key !== undefined ? { key: e.key } : {}), due: e.dueAt, item: e.item, att: e.attempts, ...(e.lastError !== undefined ? { err: e.lastError } : {}), at: e.createdAt };
}

function view<T>(e: Entry<T>): QueuedItem<T> {
  return { id: e.id, ...(e.key !== undefined ? { key: e.key } : {}), item: e.item, dueAt: e.dueAt, attempts: e.attempts, ...(e.lastError !== undefined ? { lastError: e.lastError } : {}), createdAt: e.createdAt };
}

function leasedView<T>(e: Entry<T>): Leased<T> {
  return { ...view(e), token: e.token, leasedUntil: e.leasedUntil };
}
