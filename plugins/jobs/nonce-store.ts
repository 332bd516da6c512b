/**
 * Nonces seen per application, so each signed request is accepted once (the original never stored
 * them: facts §1). The interface is deliberately narrow (reserve, then commit or release): the verifier
 * does not know whether a store keeps them in memory or in the SDK's durable log.
 */
import { z, type DurableLog } from '../sdk/index.ts';
import { JobsError } from './envelope.ts';

export interface NonceClaim {
  /** Makes the nonce durable; resolve it before acknowledging the request it came with. */
  commit(): Promise<void>;
  /** Gives the nonce back because the request was refused after all: a refused request burns nothing. */
  release(): void;
}

export interface NonceStore {
  /**
   * Holds (appKey, nonce) until expiresAt (ms since epoch). Null when it is already held, committed or
   * merely reserved: a second request racing the first with the same nonce loses at once.
   */
  reserve(appKey: string, nonce: string, expiresAt: number): Promise<NonceClaim | null>;
  /** Nonces currently remembered (live ones only once pruned); for metrics and tests. */
  size(): number;
  close(): Promise<void>;
}

/**
 * `logged`: handed to a durable log (written or being written), so a snapshot must hold it.
 * `taken`: another controller sharing the log wrote the same nonce while this one held it reserved.
 */
type Entry = { key: string; expiresAt: number; durable: boolean; logged?: boolean; taken?: boolean };

/** The nonce was accepted by another controller first: the request is a replay (answered 401 as one). */
export class NonceTakenError extends JobsError {
  constructor() {
    super('header nonce: already used; sign every request with a fresh nonce', 401);
    this.name = 'NonceTakenError';
  }
}

/** Kept in memory only: for tests and for a controller configured without a data dir. */
export class MemoryNonceStore implements NonceStore {
  protected readonly entries = new Map<string, Entry>();
  /** Keys by expiry second, so pruning touches only what expired. */
  private readonly buckets = new Map<number, string[]>();
  private prunedUpTo = 0;

  constructor(protected readonly now: () => number = Date.now) {}

  async reserve(appKey: string, nonce: string, expiresAt: number): Promise<NonceClaim | null> {
    return this.reserveNow(appKey, nonce, expiresAt);
  }

  /** Synchronous on purpose: nothing can run between the check and the claim. */
  protected reserveNow(appKey: string, nonce: string, expiresAt: number, durable = false): NonceClaim | null {
    const now = this.now();
    this.prune(now);
    const key = `${appKey}\n${nonce}`;
    const held = this.entries.get(key);
    if (held && held.expiresAt > now) return null;
    const entry: Entry = { key, expiresAt, durable, logged: durable };
    this.entries.set(key, entry);
    const sec = Math.ceil(expiresAt / 1000);
    const bucket = this.buckets.get(sec);
    if (bucket) bucket.push(key);
    else this.buckets.set(sec, [key]);
    return {
      commit: async () => {
        await this.persist(entry);
        entry.durable = true;
      },
      release: () => {
        if (this.entries.get(key) === entry && !entry.durable) this.entries.delete(key);
      },
    };
  }

  /** Memory is all there is to write. */
  protected async persist(_entry: Entry): Promise<void> {}

  private prune(now: number): void {
    const upTo = Math.floor(now / 1000);
    if (upTo <= this.prunedUpTo) return;
    this.prunedUpTo = upTo;
    for (const [sec, keys] of this.buckets) {
      if (sec > upTo) continue;
      this.buckets.delete(sec);
      for (const k of keys) if ((this.entries.get(k)?.expiresAt ?? Infinity) <= now) this.entries.delete(k);
    }
  }

  size(): number {
    this.prune(this.now());
    return this.entries.size;
  }

  async close(): Promise<void> {}
}

/** One remembered nonce as the log stores it. */
export const nonceRecord = z.object({ a: z.string(), n: z.string(), e: z.number() });
export type NonceRecord = z.infer<typeof nonceRecord>;

/** Opens a durable log of the store's own; the controller half passes `ctx.openLog`. */
export type OpenNonceLog = (load: (r: NonceRecord) => void, snapshot: () => Iterable<NonceRecord>) => Promise<DurableLog<NonceRecord>>;

/**
 * Memory plus a durable log (the SDK's), so a restart does not reopen replays. The log may be its own
 * (open) or shared with the records a nonce comes with (attach): a task created with a nonce is then
 * one write, and a write that fails keeps neither. Commits of one turn share the log's group commit;
 * a compaction keeps only the nonces still inside their window.
 */
export class LogNonceStore extends MemoryNonceStore {
  private write!: (records: NonceRecord[]) => Promise<void>;
  private closeLog: () => Promise<void> = async () => {};
  /** Claims by the entry they hold, for commitWith(). */
  private readonly claimed = new WeakMap<NonceClaim, Entry>();

  static async open(openLog: OpenNonceLog, now: () => number = Date.now): Promise<LogNonceStore> {
    const store = new LogNonceStore(now);
    const log = await openLog(
      (r) => store.load(r),
      () => store.live(),
    );
    store.attach((records) => log.append(records), () => log.close());
    return store;
  }

  /** Where committed nonces are written (a shared log's append). */
  attach(write: (records: NonceRecord[]) => Promise<void>, close?: () => Promise<void>): void {
    this.write = write;
    if (close) this.closeLog = close;
  }

  /** A record read back from the log (or appended by another controller). */
  load(r: NonceRecord): void {
    const held = this.entries.get(`${r.a}\n${r.n}`);
    if (held && !held.durable && held.expiresAt > this.now()) {
      // Reserved here by a request still being handled, written elsewhere: that request loses.
      held.taken = true;
      held.durable = true;
      held.logged = true;
      return;
    }
    if (r.e > this.now()) this.reserveNow(r.a, r.n, r.e, true);
  }

  /** Whether another controller wrote this nonce while it was reserved here. */
  taken(r: NonceRecord): boolean {
    return this.entries.get(`${r.a}\n${r.n}`)?.taken === true;
  }

  /** The nonces a snapshot must hold: handed to the log, still inside their window. */
  *live(): Iterable<NonceRecord> {
    const t = this.now();
    for (const e of this.entries.values()) if (e.logged && e.expiresAt > t) yield recordOf(e);
  }

  protected override reserveNow(appKey: string, nonce: string, expiresAt: number, durable = false): NonceClaim | null {
    const claim = super.reserveNow(appKey, nonce, expiresAt, durable);
    if (claim) this.claimed.set(claim, this.entries.get(`${appKey}\n${nonce}`)!);
    return claim;
  }

  protected override persist(entry: Entry): Promise<void> {
    return this.logged(entry, () => this.write([recordOf(entry)]));
  }

  /**
   * Commits the claim's nonce through `write`, which stores it along with the request's own records in
   * one append: durable together, or neither.
   */
  async commitWith(claim: NonceClaim, write: (nonce: NonceRecord) => Promise<void>): Promise<void> {
    const entry = this.claimed.get(claim);
    if (!entry) throw new Error('not a claim of this store');
    await this.logged(entry, () => write(recordOf(entry)));
    entry.durable = true;
  }

  private async logged(entry: Entry, write: () => Promise<void>): Promise<void> {
    if (entry.taken) throw new NonceTakenError();
    entry.logged = true;
    try {
      await write();
    } catch (err) {
      // Taken: the other controller's record of it is in the log.
      if (!entry.taken) entry.logged = false;
      throw err;
    }
  }

  override async close(): Promise<void> {
    await this.closeLog();
  }
}

function recordOf(e: Entry): NonceRecord {
  const [a, n] = e.key.split('\n');
  return { a, n, e: e.expiresAt };
}
