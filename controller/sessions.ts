import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { openStore, refreshStore, type Store } from '../plugins/sdk/store.ts';
import { retryOnConflict } from '../plugins/sdk/durable/storage-error.ts';
import { sha256 } from './secrets.ts';

const COOKIE = 'outpost_session';
/** The header the dashboard script sends the session's CSRF token in. */
export const CSRF_HEADER = 'x-outpost-csrf';

/** Sign-ins kept at most; beyond, the oldest go first (each one took the admin token, so this is only a backstop). */
export const MAX_SESSIONS = 1000;
/** Races lost to another controller's commit on the same rows before a change gives up (each loss refreshes the data). */
const ATTEMPTS = 5;

interface StoredSession {
  createdAt: number;
  expiresAt: number;
}

interface SessionsData {
  /** Keyed by the SHA-256 of the session token: the database never holds a token a reader could replay. */
  sessions: Record<string, StoredSession>;
}

/**
 * Dashboard sign-in sessions: an opaque token in an httpOnly cookie, never the admin token itself. They
 * live in the controller's store, so on PostgreSQL every controller behind a load balancer knows them
 * (and a sign-out anywhere ends them everywhere), and on files they survive a restart.
 */
export class Sessions {
  private constructor(
    private readonly store: Store<SessionsData>,
    private readonly ttlMs: number,
  ) {}

  static async open(dataDir: string, ttlMs = 12 * 3600 * 1000): Promise<Sessions> {
    return new Sessions(await openStore<SessionsData>(dataDir, 'sessions', { sessions: {} }), ttlMs);
  }

  async create(): Promise<{ id: string; cookie: string }> {
    const id = randomBytes(24).toString('base64url');
    const key = sha256(id);
    await this.change((d) => {
      const now = Date.now();
      prune(d.sessions, now, MAX_SESSIONS - 1);
      d.sessions[key] = { createdAt: now, expiresAt: now + this.ttlMs };
    });
    return { id, cookie: `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.ttlMs / 1000)}` };
  }

  async destroy(headers: Record<string, string>): Promise<string> {
    const id = this.idFrom(headers);
    if (id) {
      const key = sha256(id);
      await this.change((d) => {
        delete d.sessions[key];
      }, (d) => key in d.sessions);
    }
    return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  valid(headers: Record<string, string>): boolean {
    return this.current(headers) !== undefined;
  }

  /**
   * For the page a sign-in redirects to: a cookie this controller does not know yet may come from a
   * sign-in another controller committed a moment ago (its notification takes milliseconds), so the
   * store reads what changed once before the request counts as signed out.
   */
  async settle(headers: Record<string, string>): Promise<void> {
    if (this.idFrom(headers) && !this.valid(headers)) await refreshStore(this.store).catch(() => undefined);
  }

  /** The CSRF token of the request's session, for the page to send back; undefined when signed out. */
  csrfToken(headers: Record<string, string>): string | undefined {
    const id = this.idFrom(headers);
    return id && this.current(headers) ? csrfOf(id) : undefined;
  }

  /** Whether `given` is the CSRF token of the request's session (constant time). */
  csrfMatches(headers: Record<string, string>, given: unknown): boolean {
    const expected = this.csrfToken(headers);
    if (!expected || typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(expected);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private current(headers: Record<string, string>): StoredSession | undefined {
    const id = this.idFrom(headers);
    if (!id) return undefined;
    const s = this.store.data.sessions[sha256(id)];
    // Expired ones are dropped by the next sign-in's prune: a read never writes.
    return s && s.expiresAt >= Date.now() ? s : undefined;
  }

  /** Applies fn, again on the refreshed data when another controller committed the same rows first. */
  private async change(fn: (d: SessionsData) => void, needed: (d: SessionsData) => boolean = () => true): Promise<void> {
    await retryOnConflict(async () => {
      if (needed(this.store.data)) await this.store.update(fn);
    }, ATTEMPTS);
  }

  private idFrom(headers: Record<string, string>): string | undefined {
    const cookie = headers['cookie'];
    if (!cookie) return undefined;
    for (const part of cookie.split(';')) {
      const [k, v] = part.trim().split('=', 2);
      if (k === COOKIE && v) return v;
    }
    return undefined;
  }
}

/**
 * Derived from the session token rather than stored: one secret fewer in the database, and every
 * controller computes the same one. One-way, so the page holding it cannot give the cookie away.
 */
function csrfOf(id: string): string {
  return createHash('sha256').update(`outpost-csrf\0${id}`).digest('base64url');
}

/** Drops expired sessions, then the oldest until at most `keep` remain. */
function prune(sessions: Record<string, StoredSession>, now: number, keep: number): void {
  for (const [k, s] of Object.entries(sessions)) if (s.expiresAt < now) delete sessions[k];
  const left = Object.entries(sessions);
  if (left.length <= keep) return;
  left.sort((a, b) => a[1].createdAt - b[1].createdAt);
  for (const [k] of left.slice(0, left.length - keep)) delete sessions[k];
}
