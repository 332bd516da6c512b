import { restError, type Route } from '../../plugins/sdk/http.ts';
import type { Identity } from '../identity.ts';
import type { Sessions } from '../sessions.ts';
import type { Registry } from '../registry.ts';
import type { ControllerPluginHost } from '../plugin-host.ts';
import type { RecentEvents } from '../recent-events.ts';
import type { Outbox } from '../webhooks/outbox.ts';

export interface DashboardDeps {
  identity: Identity;
  sessions: Sessions;
  registry: Registry;
  plugins: ControllerPluginHost;
  events: RecentEvents;
  outbox: Outbox;
  version: string;
}

export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const html = (body: string, status = 200, headers: Record<string, string> = {}) => ({ status, text: body, contentType: 'text/html; charset=utf-8', headers: { 'cache-control': 'no-store', ...headers } });

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title></head><body>${body}</body></html>`;
}

export function dashboardRoutes(d: DashboardDeps): Route[] {
  const signIn = (msg = '') =>
    page('Outpost — sign in', `<h1>Outpost</h1>${msg ? `<p role="alert">${esc(msg)}</p>` : ''}<form method="post" action="/login"><label>Admin token <input type="password" name="token" autocomplete="current-password" required></label><button type="submit">Sign in</button></form>`);
  return [
    {
      method: 'GET',
      path: '/',
      auth: 'none',
      error: restError,
      handler: (req) => {
        if (!d.sessions.valid(req.headers)) return html(signIn());
        const rows = d.registry
          .list()
          .map((n) => `<tr><td>${esc(n.name)}</td><td>${esc(n.state)}</td><td>${n.lastHeartbeat ? esc(new Date(n.lastHeartbeat).toISOString()) : '—'}</td></tr>`)
          .join('');
        return html(page('Outpost', `<h1>Outpost ${esc(d.version)}</h1><form method="post" action="/logout"><button>Sign out</button></form><table id="nodes"><thead><tr><th>Node</th><th>State</th><th>Last heartbeat</th></tr></thead><tbody>${rows}</tbody></table>`));
      },
    },
    {
      method: 'POST',
      path: '/login',
      auth: 'none',
      error: restError,
      handler: (req) => {
        const token = typeof req.fields.token === 'string' ? req.fields.token : '';
        if (!token || !d.identity.isAdminToken(token)) return html(signIn('That admin token is not valid.'), 401);
        const { cookie } = d.sessions.create();
        return { status: 303, text: '', headers: { location: '/', 'set-cookie': cookie } };
      },
    },
    {
      method: 'POST',
      path: '/logout',
      auth: 'none',
      error: restError,
      handler: (req) => ({ status: 303, text: '', headers: { location: '/', 'set-cookie': d.sessions.destroy(req.headers) } }),
    },
  ];
}
