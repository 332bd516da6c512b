/** Store URLs: checked and shown without their credentials (kept apart from the driver, which loads only when used). */

/** Where a URL points, without its credentials: `host:port/database`. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return '(not a postgres:// URL)';
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** Checks a store URL; the message never quotes it (it holds a password). */
export function urlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL: expected postgres://user:password@host:port/database';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return `must start with postgres:// or postgresql://, not ${u.protocol}//`;
  if (!u.pathname || u.pathname === '/') return 'names no database: expected postgres://user:password@host:port/database';
  return undefined;
}
