import { readFileSync } from 'node:fs';
import { restError, type HttpRequest, type HttpResult, type Route } from '../../plugins/sdk/http.ts';
import type { Identity } from '../identity.ts';
import type { Sessions } from '../sessions.ts';
import { esc } from '../../plugins/sdk/html.ts';
import { htmlResult, jsonResult, page, SECURITY_HEADERS } from './html.ts';
import { allSections, type Section, type ViewDeps } from './views.ts';
import { crossSiteReason, LoginLimiter } from './guard.ts';
import { CSRF_HEADER } from '../sessions.ts';

export interface DashboardDeps extends ViewDeps {
  identity: Identity;
  sessions: Sessions;
  /** Where browsers reach the controller when it sits behind a proxy; an accepted Origin for forms. */
  publicUrl?: string;
}

const asset = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
const APP_JS = asset('app.js');
const APP_CSS = asset('app.css');
const ACTIONS_JS = asset('actions.js');

function signInPage(message = ''): string {
  return page(
    'Outpost — sign in',
    `<main class="signin card"><h1>Outpost</h1><p class="muted">Sign in with the controller's admin token. It is printed once when the controller first starts.</p>` +
      (message ? `<p class="alert" role="alert">${esc(message)}</p>` : '') +
      `<form method="post" action="/login"><label for="token">Admin token</label>` +
      `<input id="token" type="password" name="token" autocomplete="current-password" spellcheck="false" required autofocus>` +
      `<button type="submit" class="btn primary">Sign in</button></form></main>`,
    'signin-page',
  );
}

/**
 * The signed-in page. The session's CSRF token goes in a <meta> for the page script to send back with
 * every action, and in the sign-out form, which works without the script.
 */
function dashboardPage(version: string, sections: Section[], csrf: string, publicUrl?: string): string {
  const box = (s: Section) => `<section id="${esc(s.id)}" class="card${s.slot === 'panel' ? ' panel' : ''}" data-section="${esc(s.slot)}">${s.html}</section>`;
  const [summary, nodes, ...rest] = sections.filter((s) => s.slot === 'fixed');
  const panels = sections.filter((s) => s.slot === 'panel');
  return page(
    'Outpost',
    `<header class="top"><div class="brand">Outpost <span class="muted small">v${esc(version)}</span></div>` +
      `<div id="live-status" class="live" role="status" aria-live="polite">live</div>` +
      `<form method="post" action="/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit" class="btn">Sign out</button></form></header>` +
      `<div id="action-status" class="action-status" role="status" aria-live="polite" aria-atomic="true"></div>` +
      `<main id="live">${box(summary)}${box(nodes)}<div id="panels">${panels.map(box).join('')}</div><div class="grid">${rest.map(box).join('')}</div></main>` +
      `<script src="/dashboard/app.js" defer></script><script src="/dashboard/actions.js" defer></script>`,
    '',
    { 'outpost-csrf': csrf, 'outpost-csrf-header': CSRF_HEADER, ...(publicUrl ? { 'outpost-controller-url': publicUrl } : {}) },
  );
}

/** Marks the cookie Secure when the browser reached us over TLS (directly or through a proxy that says so). */
function secureCookie(cookie: string, req: HttpRequest, publicUrl?: string): string {
  const tls = req.headers['x-forwarded-proto'] === 'https' || publicUrl?.startsWith('https:');
  return tls ? `${cookie}; Secure` : cookie;
}

const asset200 = (text: string, contentType: string): HttpResult => ({ status: 200, text, contentType, headers: { ...SECURITY_HEADERS } });

export function dashboardRoutes(d: DashboardDeps): Route[] {
  const limiter = new LoginLimiter();
  const refuse = (reason: string) => htmlResult(page('Outpost — refused', `<main class="signin card"><h1>Refused</h1><p class="alert" role="alert">${esc(reason)}</p><p><a href="/">Back to the dashboard</a></p></main>`, 'signin-page'), 403);
  return [
    {
      method: 'GET',
      path: '/',
      auth: 'none',
      error: restError,
      handler: async (req) => {
        await d.sessions.settle(req.headers);
        const csrf = d.sessions.csrfToken(req.headers);
        return htmlResult(csrf ? dashboardPage(d.version, await allSections(d), csrf, d.publicUrl) : signInPage());
      },
    },
    {
      method: 'GET',
      path: '/dashboard/fragment',
      auth: 'none',
      error: restError,
      handler: async (req) => {
        await d.sessions.settle(req.headers);
        if (!d.sessions.valid(req.headers)) return jsonResult(restError(401, 'signed out: sign in again at /').json, 401);
        return jsonResult({ now: Date.now(), sections: await allSections(d) });
      },
    },
    { method: 'GET', path: '/dashboard/app.js', auth: 'none', error: restError, handler: () => asset200(APP_JS, 'text/javascript; charset=utf-8') },
    { method: 'GET', path: '/dashboard/actions.js', auth: 'none', error: restError, handler: () => asset200(ACTIONS_JS, 'text/javascript; charset=utf-8') },
    { method: 'GET', path: '/dashboard/app.css', auth: 'none', error: restError, handler: () => asset200(APP_CSS, 'text/css; charset=utf-8') },
    { method: 'GET', path: '/login', auth: 'none', error: restError, handler: () => ({ status: 303, text: '', headers: { location: '/', ...SECURITY_HEADERS } }) },
    {
      method: 'POST',
      path: '/login',
      auth: 'none',
      error: (status, message) => htmlResult(signInPage(message), status),
      handler: async (req) => {
        const cross = crossSiteReason(req.headers, d.publicUrl);
        if (cross) return refuse(cross);
        if (req.query.token !== undefined) return htmlResult(signInPage('Send the token in the form, never in the URL.'), 400);
        if (limiter.blocked(req.ip)) return htmlResult(signInPage('Too many failed sign-ins from this address; wait a few minutes.'), 429, { 'retry-after': '300' });
        const token = typeof req.fields.token === 'string' ? req.fields.token.trim() : '';
        if (!token) return htmlResult(signInPage('Enter the admin token.'), 400);
        if (!d.identity.isAdminToken(token)) {
          limiter.fail(req.ip);
          return htmlResult(signInPage('That admin token is not valid.'), 401);
        }
        limiter.succeed(req.ip);
        const { cookie } = await d.sessions.create();
        return { status: 303, text: '', headers: { ...SECURITY_HEADERS, location: '/', 'set-cookie': secureCookie(cookie, req, d.publicUrl) } };
      },
    },
    {
      method: 'POST',
      path: '/logout',
      auth: 'none',
      error: restError,
      handler: async (req) => {
        const cross = crossSiteReason(req.headers, d.publicUrl);
        if (cross) return refuse(cross);
        // Signed out already (expired, controller restarted): nothing to protect, just clear the cookie.
        if (d.sessions.valid(req.headers) && !d.sessions.csrfMatches(req.headers, req.fields.csrf ?? req.headers[CSRF_HEADER])) return refuse('sign-out refused: the CSRF token is missing or wrong; reload the page and sign out again');
        return { status: 303, text: '', headers: { ...SECURITY_HEADERS, location: '/', 'set-cookie': await d.sessions.destroy(req.headers) } };
      },
    },
  ];
}
