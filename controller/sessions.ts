import { randomBytes } from 'node:crypto';

const COOKIE = 'outpost_session';

/** Dashboard sign-in sessions: an opaque id in an httpOnly cookie, never the admin token itself. */
export class Sessions {
  private readonly sessions = new Map<string, number>();
  constructor(private readonly ttlMs = 12 * 3600 * 1000) {}

  create(): { id: string; cookie: string } {
    const id = randomBytes(24).toString('base64url');
    this.sessions.set(id, Date.now() + this.ttlMs);
    return { id, cookie: `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.ttlMs / 1000)}` };
  }

  destroy(headers: Record<string, string>): string {
    const id = this.idFrom(headers);
    if (id) this.sessions.delete(id);
    return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  valid(headers: Record<string, string>): boolean {
    const id = this.idFrom(headers);
    if (!id) return false;
    const exp = this.sessions.get(id);
    if (!exp) return false;
    if (exp < Date.now()) {
      this.sessions.delete(id);
      return false;
    }
    return true;
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
