import type { HttpResult } from '../../plugins/sdk/http.ts';

/** Escapes text for HTML element content and double- or single-quoted attributes. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * Scripts and styles come only from this origin (app.js, app.css): nothing inline, so an escaped-away
 * injection has nowhere left to run even if a plugin panel forgot to escape something.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with our own forms.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

export function htmlResult(body: string, status = 200, headers: Record<string, string> = {}): HttpResult {
  return { status, text: body, contentType: 'text/html; charset=utf-8', headers: { ...SECURITY_HEADERS, ...headers } };
}

export function jsonResult(json: unknown, status = 200): HttpResult {
  return { status, json, headers: { ...SECURITY_HEADERS } };
}

export function page(title: string, body: string, bodyClass = ''): string {
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta name="referrer" content="same-origin">' +
    `<title>${esc(title)}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/dashboard/app.css"></head>` +
    `<body${bodyClass ? ` class="${esc(bodyClass)}"` : ''}>${body}</body></html>`
  );
}

/** "4 s ago", "3 min ago": what an operator scanning a table wants; the exact time goes in a title. */
export function ago(ts: number | null | undefined, now = Date.now()): string {
  if (!ts) return 'never';
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function timeCell(ts: number | null | undefined, now = Date.now()): string {
  if (!ts) return '<span class="muted">never</span>';
  const iso = new Date(ts).toISOString();
  return `<time datetime="${esc(iso)}" title="${esc(iso)}">${esc(ago(ts, now))}</time>`;
}

/** A coloured state word; the class is chosen from a fixed list so no input reaches it. */
export function badge(state: string): string {
  const cls = ({ up: 'ok', running: 'ok', delivered: 'ok', down: 'bad', failed: 'bad', dead: 'bad', pending: 'warn', stopped: 'muted', unknown: 'muted' } as Record<string, string>)[state] ?? 'muted';
  return `<span class="badge ${cls}">${esc(state)}</span>`;
}

export function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
