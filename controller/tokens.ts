import { randomBytes } from 'node:crypto';
import { openStore, refreshStore, type Store } from '../plugins/sdk/store.ts';
import { retryOnConflict } from '../plugins/sdk/durable/storage-error.ts';
import { matchesHash, newSecret, sha256 } from './secrets.ts';

export interface JoinToken {
  id: string;
  hash: string;
  createdAt: number;
  expiresAt: number;
  usesLeft: number;
  uses: number;
  labels: Record<string, string>;
  revoked: boolean;
}

export type PublicJoinToken = Omit<JoinToken, 'hash'> & { state: 'active' | 'expired' | 'used-up' | 'revoked' };

interface TokensData {
  tokens: Record<string, JoinToken>;
}

/** Parses "24h", "30m", "90s", "7d" or a number of seconds into milliseconds. */
function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new Error('duration must be a positive number of seconds');
    return value * 1000;
  }
  if (typeof value !== 'string') throw new Error('must be a duration such as "90s", "30m", "24h" or a number of seconds');
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new Error(`invalid duration "${value}": use e.g. 90s, 30m, 24h, 7d`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms'];
  if (n <= 0) throw new Error('duration must be positive');
  return n * unit;
}

/** A join token lives from one minute (long enough to paste an install line) to one year. */
export const TTL_MIN_MS = 60_000;
export const TTL_MAX_MS = 365 * 86_400_000;

/** A token lifetime: a duration (parseDuration's forms) within the bounds; throws naming the problem. */
export function parseTtl(value: string | number): number {
  const ms = parseDuration(value);
  if (ms < TTL_MIN_MS || ms > TTL_MAX_MS) throw new Error(`must be from 1m to 365d (one minute to one year), got ${JSON.stringify(value)}`);
  return ms;
}

/** Races lost to other controllers before consume() gives up (each loss means the token was used meanwhile). */
const CONSUME_ATTEMPTS = 5;

export class JoinTokens {
  private constructor(private readonly store: Store<TokensData>) {}

  static async open(dataDir: string): Promise<JoinTokens> {
    return new JoinTokens(await openStore<TokensData>(dataDir, 'tokens', { tokens: {} }));
  }

  async create(opts: { ttlMs: number; uses: number; labels: Record<string, string> }): Promise<{ token: string; info: PublicJoinToken }> {
    const id = randomBytes(6).toString('hex');
    const secret = newSecret(24);
    const now = Date.now();
    const rec: JoinToken = { id, hash: sha256(secret), createdAt: now, expiresAt: now + opts.ttlMs, usesLeft: opts.uses, uses: 0, labels: opts.labels, revoked: false };
    await retryOnConflict(() =>
      this.store.update((d) => {
        d.tokens[id] = rec;
      }),
    );
    return { token: `opj_${id}.${secret}`, info: this.publicView(rec) };
  }

  list(): PublicJoinToken[] {
    return Object.values(this.store.data.tokens).map((t) => this.publicView(t));
  }

  async revoke(id: string): Promise<boolean> {
    const t = this.store.data.tokens[id];
    if (!t) return false;
    await retryOnConflict(() =>
      this.store.update((d) => {
        const r = d.tokens[id];
        if (r) r.revoked = true;
      }),
    );
    return true;
  }

  /**
   * Checks and consumes one use; throws a message naming what is wrong with the token. Controllers
   * sharing a database may consume the same token at once: the store commits only one of two
   * changes to its record, and the loser checks again against the winner's (a last use goes once).
   */
  async consume(token: string): Promise<JoinToken> {
    const m = /^opj_([0-9a-f]{12})\.([A-Za-z0-9_-]+)$/.exec(token);
    if (!m) throw new Error('join token is malformed');
    // A token made through another controller a moment ago may not have reached this one yet (its
    // notification takes milliseconds): a miss reads the store once before refusing.
    if (!this.store.data.tokens[m[1]]) await refreshStore(this.store);
    return retryOnConflict(async () => {
      const t = this.store.data.tokens[m[1]];
      if (!t || !matchesHash(m[2], t.hash)) throw new Error('join token is not valid');
      const state = this.state(t);
      if (state !== 'active') throw new Error(`join token is ${state}`);
      await this.store.update(() => {
        t.usesLeft -= 1;
        t.uses += 1;
      }, { touches: [['tokens', m[1]]] });
      return t;
    }, CONSUME_ATTEMPTS);
  }

  /** Gives back a use consume() took for an enrollment that then failed to store its node. */
  async giveBack(id: string): Promise<void> {
    await retryOnConflict(() =>
      this.store.update((d) => {
        const t = d.tokens[id];
        if (!t || t.uses <= 0) return;
        t.usesLeft += 1;
        t.uses -= 1;
      }),
    );
  }

  private state(t: JoinToken): PublicJoinToken['state'] {
    if (t.revoked) return 'revoked';
    if (Date.now() >= t.expiresAt) return 'expired';
    if (t.usesLeft <= 0) return 'used-up';
    return 'active';
  }

  private publicView(t: JoinToken): PublicJoinToken {
    const { hash: _hash, ...rest } = t;
    return { ...rest, state: this.state(t) };
  }
}
