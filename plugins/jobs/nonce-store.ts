/**
 * Nonces seen per application, so each signed request is accepted once (the original never stored
 * them: facts §1). The interface is deliberately narrow (reserve, then commit or release) so the SDK's
 * journal can replace the file-backed store without touching the verifier.
 */
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

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

type Entry = { expiresAt: number; durable: boolean };

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
    const entry: Entry = { expiresAt, durable };
    this.entries.set(key, entry);
    const sec = Math.ceil(expiresAt / 1000);
    const bucket = this.buckets.get(sec);
    if (bucket) bucket.push(key);
    else this.buckets.set(sec, [key]);
    return {
      commit: async () => {
        await this.persist(entry, key);
        entry.durable = true;
      },
      release: () => {
        if (this.entries.get(key) === entry && !entry.durable) this.entries.delete(key);
      },
    };
  }

  /** Memory is all there is to write. */
  protected async persist(_entry: Entry, _key: string): Promise<void> {}

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

/**
 * Memory plus an append-only file (`<expiresAt>\t<appKey>\t<nonce>` lines), so a restart does not
 * reopen replays. Commits made while a write is in flight share the next write (group commit). Like the
 * SDK store it does not fsync: it survives a crash of the process, which is what the rest of the data dir
 * survives. Rewritten without expired lines at open and whenever dead lines outnumber live ones.
 */
export class FileNonceStore extends MemoryNonceStore {
  private handle: FileHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private batch: Array<[Entry, string]> | null = null;
  private batchDone: Promise<void> = Promise.resolve();
  private linesInFile = 0;

  private constructor(
    private readonly file: string,
    now: () => number,
    private readonly compactAbove: number,
  ) {
    super(now);
  }

  static async open(file: string, opts: { now?: () => number; compactAbove?: number } = {}): Promise<FileNonceStore> {
    const store = new FileNonceStore(file, opts.now ?? Date.now, opts.compactAbove ?? 100_000);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const now = store.now();
    for (const line of text.split('\n')) {
      // A line cut short by a crash mid-append has fewer than three fields: it was never acknowledged.
      const [exp, appKey, nonce] = line.split('\t');
      const expiresAt = Number(exp);
      if (nonce === undefined || !Number.isFinite(expiresAt) || expiresAt <= now) continue;
      store.reserveNow(appKey, nonce, expiresAt, true);
    }
    await store.rewrite();
    return store;
  }

  protected override persist(entry: Entry, key: string): Promise<void> {
    const [appKey, nonce] = key.split('\n');
    if (!this.batch) {
      const lines: Array<[Entry, string]> = (this.batch = []);
      const step = this.chain.then(() => {
        this.batch = null;
        return this.append(lines);
      });
      this.chain = step.catch(() => undefined);
      this.batchDone = step;
    }
    this.batch.push([entry, `${entry.expiresAt}\t${appKey}\t${nonce}\n`]);
    return this.batchDone;
  }

  private async append(lines: Array<[Entry, string]>): Promise<void> {
    await this.handle!.write(lines.map(([, line]) => line).join(''));
    // Durable before a rewrite in this same step copies the live entries.
    for (const [entry] of lines) entry.durable = true;
    this.linesInFile += lines.length;
    if (this.linesInFile > this.compactAbove && this.linesInFile > 2 * this.size()) await this.rewrite();
  }

  /** Writes the durable live entries to a new file and swaps it in; runs inside the write chain. */
  private async rewrite(): Promise<void> {
    const now = this.now();
    const live = [...this.entries].filter(([, e]) => e.durable && e.expiresAt > now);
    const tmp = `${this.file}.tmp`;
    const out = await open(tmp, 'w', 0o600);
    try {
      await out.write(live.map(([k, e]) => `${e.expiresAt}\t${k.replace('\n', '\t')}\n`).join(''));
    } finally {
      await out.close();
    }
    await rename(tmp, this.file);
    await this.handle?.close();
    this.handle = await open(this.file, 'a', 0o600);
    this.linesInFile = live.length;
  }

  override async close(): Promise<void> {
    await this.chain;
    await this.handle?.close();
    this.handle = undefined;
  }
}
