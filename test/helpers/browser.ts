/**
 * A browser-like HTTP client for dashboard tests: form posts, cookies passed by hand, no redirects
 * followed, and every response kept so a test can search them all for secrets.
 */
import assert from 'node:assert/strict';

export interface Res {
  status: number;
  text: string;
  headers: Headers;
}

export interface GoOptions {
  cookie?: string;
  form?: Record<string, string>;
  json?: unknown;
  headers?: Record<string, string>;
}

export function browser(base: string) {
  const seen: Res[] = [];
  const go = async (method: string, path: string, opts: GoOptions = {}): Promise<Res> => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.cookie) headers.cookie = opts.cookie;
    let body: string | undefined;
    if (opts.form) {
      body = new URLSearchParams(opts.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] = 'application/json';
    }
    const r = await fetch(base + path, { method, headers, body, redirect: 'manual' });
    const res = { status: r.status, text: await r.text(), headers: r.headers };
    seen.push(res);
    return res;
  };
  const signIn = async (token: string): Promise<string> => {
    const r = await go('POST', '/login', { form: { token }, headers: { origin: base } });
    assert.equal(r.status, 303, r.text);
    return (r.headers.get('set-cookie') ?? '').split(';')[0];
  };
  return { go, signIn, seen };
}

/** The session's CSRF token, as the dashboard page hands it to its script. */
export function csrfOf(pageHtml: string): string {
  const m = /<meta name="outpost-csrf" content="([^"]+)">/.exec(pageHtml);
  assert.ok(m, 'the dashboard page carries a CSRF token');
  return m[1];
}
