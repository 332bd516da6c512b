import { CSRF_HEADER, type Sessions } from '../sessions.ts';

/**
 * Cross-site protection for the dashboard's forms and for REST calls carrying the session cookie.
 * The cookie is SameSite=Strict already; checking where the request came from as well covers
 * sibling subdomains (which count as "same site") and login CSRF (signing a victim into a session
 * the attacker chose), which SameSite cannot.
 */
export function crossSiteReason(headers: Record<string, string>, publicUrl?: string): string | undefined {
  // Modern browsers say where a request came from in a header page scripts cannot forge; it stays right
  // behind a proxy that rewrites Host, and when a no-referrer policy turns Origin into "null".
  const site = headers['sec-fetch-site'];
  if (site) return site === 'same-origin' || site === 'none' ? undefined : `cross-site request refused (Sec-Fetch-Site: ${site})`;
  const origin = headers['origin'];
  // Older browsers: compare Origin. A client sending neither (curl, a script) cannot carry a victim's cookie.
  if (origin === undefined) return undefined;
  if (origin === 'null') return 'request refused: its Origin is "null"';
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return 'request refused: its Origin header is not a URL';
  }
  if (host && host === headers['host']) return undefined;
  if (publicUrl) {
    try {
      if (new URL(publicUrl).origin === origin) return undefined;
    } catch {
      // A malformed publicUrl is rejected by the config schema; nothing to match against here.
    }
  }
  return 'cross-origin request refused';
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a request without a bearer token gets admin rights from its dashboard session: false when it
 * has no session (the route answers 401), a reason when the session is there but the request may not
 * use it (403): it comes from another origin, or it changes state without the session's CSRF token.
 * A bearer token is never sent by a browser on its own, so only cookie-borne requests need this.
 */
export function sessionAdmission(sessions: Sessions, headers: Record<string, string>, method: string, publicUrl?: string): boolean | string {
  if (!sessions.valid(headers)) return false;
  const cross = crossSiteReason(headers, publicUrl);
  if (cross) return cross;
  if (SAFE_METHODS.has(method)) return true;
  if (headers[CSRF_HEADER] === undefined) return `CSRF token missing: send the ${CSRF_HEADER} header the dashboard page holds (reload the page)`;
  return sessions.csrfMatches(headers, headers[CSRF_HEADER]) ? true : 'CSRF token does not match this session: reload the dashboard page';
}

/** Failed sign-ins per client address; the token is unguessable, this only keeps scanners from hammering. */
export class LoginLimiter {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly max = 10,
    private readonly windowMs = 5 * 60_000,
  ) {}

  blocked(ip: string, now = Date.now()): boolean {
    const f = this.failures.get(ip);
    if (!f) return false;
    if (f.resetAt <= now) {
      this.failures.delete(ip);
      return false;
    }
    return f.count >= this.max;
  }

  fail(ip: string, now = Date.now()): void {
    if (this.failures.size > 10_000) {
      for (const [k, v] of this.failures) if (v.resetAt <= now) this.failures.delete(k);
      if (this.failures.size > 10_000) this.failures.clear();
    }
    const f = this.failures.get(ip);
    if (f && f.resetAt > now) f.count += 1;
    else this.failures.set(ip, { count: 1, resetAt: now + this.windowMs });
  }

  succeed(ip: string): void {
    this.failures.delete(ip);
  }
}
