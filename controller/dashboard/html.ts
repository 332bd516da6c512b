import type { HttpResult } from '../../plugins/sdk/http.ts';
import { attrs, esc } from '../../plugins/sdk/html.ts';

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

/** A whole page; `meta` adds <meta name content> pairs the page script reads (CSRF token, controller URL). */
export function page(title: string, body: string, bodyClass = '', meta: Record<string, string> = {}): string {
  const metas = Object.entries(meta).map(([name, content]) => `<meta${attrs({ name, content })}>`).join('');
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta name="referrer" content="same-origin">' +
    metas +
    `<title>${esc(title)}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/dashboard/app.css"></head>` +
    `<body${bodyClass ? ` class="${esc(bodyClass)}"` : ''}>${body}</body></html>`
  );
}

export function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
