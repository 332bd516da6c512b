import { badge, html, muted, table } from '../../plugins/sdk/index.ts';
import type { ClusterStatus } from '../cluster.ts';
import { truncate } from './html.ts';
import { scrub } from './scrub.ts';
import type { Section } from './views.ts';

/**
 * This controller among the others on its store: the lease holder, links per controller, the store's
 * health. The same as GET /api/v1/status; the store is named by host:port/database only (never the
 * URL, which carries the password), and database messages pass the same scrub as other foreign text.
 */
export function controllersSection(s: ClusterStatus): Section {
  // Expiries lie ahead: shown as the time (UTC) they fall at.
  const until = (iso: string | null) => (iso ? html`<time datetime="${iso}">${iso.slice(11, 19)} UTC</time>` : muted('—'));
  const rows = s.controllers.map((c) => ({
    attrs: { 'data-controller': c.id },
    cells: [html`${c.id}${c.self ? html` <span class="muted small">(this one)</span>` : ''}`, c.id === s.lease.holder && s.lease.epoch !== null ? badge('holder') : muted('—'), String(c.links), c.self ? muted('—') : until(c.expiresAt)],
  }));
  const store = s.store.where ? `${s.store.kind} (${s.store.where})` : s.store.kind;
  const problems = s.store.problems.map((p) => truncate(scrub(`${p.store}: ${p.message}`), 200));
  return {
    id: 's-controllers',
    slot: 'fixed',
    html: html`<h2>Controllers</h2>
      <p class="small">This controller: <code>${s.controller.id}</code> · lease ${s.lease.held ? badge('held') : muted('not held')} · holder
        <code>${s.lease.holder ?? '—'}</code> epoch ${s.lease.epoch ?? '—'}${s.lease.expiresAt ? html` · term until ${until(s.lease.expiresAt)}` : ''}</p>
      <p class="small">Store: ${store} ${s.store.healthy ? badge('ok') : badge('failing')}${problems.map((p) => html`<br><span class="bad">${p}</span>`)}${s.lease.error ? html`<br><span class="bad">lease: ${truncate(scrub(s.lease.error), 200)}</span>` : ''}</p>
      ${table({ columns: ['Controller', 'Lease', 'Links', 'Presence until'], rows, empty: 'No controller seen.' })}`.value,
  };
}
