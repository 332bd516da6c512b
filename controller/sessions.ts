import { randomBytes, timingSafeEqual } from 'node:crypto';

const COOKIE = 'outpost_session';
/** The header the dashboard script sends the session's CSRF token in. */
export const CSRF_HEADER = 'x-outpost-csrf';

interface Session {
  expiresAt: number;
  /** Sent back by the page with every state-changing request; a cross-site page cannot read it. */
  csrf: string;
}

/** Dashboard sign-in sessions: an opaque id in an httpOnly cookie, never the admin token itself. */
export class Sessions {
  private readonly sessions = new Map<string, Session>();
  constructor(private readonly ttlMs = 12 * 3600 * 1000) {}

  create(): { id: string; cookie: string } {
    const id = randomBytes(24).toString('base64url');
    this.sessions.set(id, { expiresAt: Date.now() + this.ttlMs, csrf: randomBytes(24).toString('base64url') });
    return { id, cookie: `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.ttlMs / 1000)}` };
  }

  destroy(headers: Record<string, string>): string {
    const id = this.idFrom(headers);
    if (id) this.sessions.delete(id);
    return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  valid(headers: Record<string, string>): boolean {
    return this.current(headers) !== undefined;
  }

  /** The CSRF token of the request's session, for the page to send back; undefined when signed out. */
  csrfToken(headers: Record<string, string>): string | undefined {
    return this.current(headers)?.csrf;
  }

  /** Whether `given` is the CSRF token of the request's session (constant time). */
  csrfMatches(headers: Record<string, string>, given: unknown): boolean {
    const s = this.current(headers);
    if (!s || typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(s.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private current(headers: Record<string, string>): Session | undefined {
    const id = this.idFrom(headers);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt < Date.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
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
