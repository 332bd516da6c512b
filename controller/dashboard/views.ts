import { redactSecrets } from '../../plugins/sdk/redact.ts';
import type { Capabilities } from '../../plugins/sdk/capabilities.ts';
import type { Registry } from '../registry.ts';
import type { ControllerPluginHost } from '../plugin-host.ts';
import type { RecentEvents } from '../recent-events.ts';
import type { Outbox } from '../webhooks/outbox.ts';
import { redactUrl } from '../webhooks/outbox.ts';
import type { Subscriptions } from '../webhooks/subscriptions.ts';
import { badge, esc, timeCell, truncate } from './html.ts';

export interface ViewDeps {
  registry: Registry;
  plugins: ControllerPluginHost;
  events: RecentEvents;
  outbox: Outbox;
  subs: Subscriptions;
  version: string;
}

/** One independently refreshed part of the page; `panel` sections come and go with their plugin. */
export interface Section {
  id: string;
  slot: 'fixed' | 'panel';
  html: string;
}

const PANEL_TIMEOUT_MS = 1500;
const EVENTS_SHOWN = 15;
const DELIVERIES_SHOWN = 8;

/** Error texts come from plugins and receivers; they may quote a credential, so mask the obvious shapes. */
export function scrub(text: string): string {
  return text
    .replace(/\b(Bearer|Basic)\s+[^\s"',;]+/gi, '$1 ***')
    .replace(/\b(secret|token|password|passwd|pass|api[_-]?key|access[_-]?key|credential|authorization)(["']?\s*[=:]\s*["']?)[^\s"',;&]+/gi, '$1$2***')
    .replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//***@');
}

function table(head: string[], rows: string[], empty: string, cls = ''): string {
  if (!rows.length) return `<p class="muted empty">${esc(empty)}</p>`;
  return `<div class="table-wrap"><table class="${esc(cls)}"><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

const cell = (label: string, html: string, cls = '') => `<td data-label="${esc(label)}"${cls ? ` class="${esc(cls)}"` : ''}>${html}</td>`;

function chips(items: string[]): string {
  return items.length ? `<span class="chips">${items.join('')}</span>` : '<span class="muted">—</span>';
}

/**
 * What the node's host lacks (icmp without ping, no Docker Engine), the reason on hover: plugins
 * needing it answer errors there. Muted, not a warning: most nodes need only some of them.
 */
function missingCapabilities(caps: Capabilities | undefined): string[] {
  return Object.entries(caps ?? {})
    .filter(([, c]) => !c.available)
    .map(([name, c]) => `<span class="chip muted" data-capability="${esc(name)}" title="${esc(truncate(c.reason ?? '', 300))}">${esc(name)}: no</span>`);
}

function pluginChip(p: { name: string; state: string; error?: string }): string {
  const cls = p.state === 'running' ? 'ok' : p.state === 'failed' ? 'bad' : 'muted';
  const title = p.error ? ` title="${esc(truncate(scrub(p.error), 300))}"` : '';
  return `<span class="chip ${cls}"${title}>${esc(p.name)}${p.state === 'running' ? '' : ` · ${esc(p.state)}`}</span>`;
}

export function summarySection(d: ViewDeps, deadCount: number): Section {
  const nodes = d.registry.list();
  const count = (s: string) => nodes.filter((n) => n.state === s).length;
  const plugins = d.plugins.status();
  const failed = plugins.filter((p) => p.state === 'failed').length + nodes.reduce((a, n) => a + n.plugins.filter((p) => p.state === 'failed').length, 0);
  const stat = (label: string, value: number | string, cls = '') => `<div class="stat ${cls}"><span class="v">${esc(value)}</span><span class="l">${esc(label)}</span></div>`;
  const pending = d.outbox.depth();
  return {
    id: 's-summary',
    slot: 'fixed',
    html:
      `<h2 class="sr-only">Summary</h2><div class="stats">` +
      stat('nodes up', `${count('up')}/${nodes.length}`, count('up') === nodes.length && nodes.length ? 'ok' : '') +
      stat('nodes down', count('down'), count('down') ? 'bad' : '') +
      stat('plugins failed', failed, failed ? 'bad' : '') +
      stat('webhooks pending', pending, pending ? 'warn' : '') +
      stat('webhooks dead', deadCount, deadCount ? 'bad' : '') +
      `</div>`,
  };
}

export function nodesSection(d: ViewDeps, now: number): Section {
  const rows = d.registry
    .list()
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((n) => {
      const labels = Object.entries(n.labels ?? {}).map(([k, v]) => `<span class="chip">${esc(k)}=${esc(v)}</span>`);
      const lacks = missingCapabilities(n.capabilities);
      const agent = [n.version ? `v${esc(n.version)}` : '', n.connected ? 'linked' : '<span class="muted">not linked</span>', n.outbox ? `<span class="warn">${esc(n.outbox)} queued</span>` : '', lacks.length ? chips(lacks) : ''].filter(Boolean).join(' · ');
      return (
        `<tr data-node="${esc(n.name)}" data-state="${esc(n.state)}">` +
        cell('Node', `<strong>${esc(n.name)}</strong>${n.local ? ' <span class="chip">local</span>' : ''}<div class="muted small">${esc(n.id)}</div>`) +
        cell('State', badge(n.state), 'state') +
        cell('Last heartbeat', timeCell(n.lastHeartbeat, now)) +
        cell('Address', `<code>${esc(n.address || '—')}</code>`) +
        cell('Labels', chips(labels)) +
        cell('Plugins', chips(n.plugins.map(pluginChip))) +
        cell('Agent', agent || '—') +
        `</tr>`
      );
    });
  return { id: 's-nodes', slot: 'fixed', html: `<h2>Nodes</h2>${table(['Node', 'State', 'Last heartbeat', 'Address', 'Labels', 'Plugins', 'Agent'], rows, 'No node has joined yet. Create a join token with `outpost token create` and run `outpost agent join` on a node.', 'nodes')}` };
}

export function pluginsSection(d: ViewDeps): Section {
  const rows = d.plugins.status().map((p) => `<tr data-plugin="${esc(p.name)}">${cell('Plugin', esc(p.name))}${cell('State', badge(p.state))}${cell('Error', p.error ? esc(truncate(scrub(p.error), 300)) : '<span class="muted">—</span>')}</tr>`);
  return { id: 's-plugins', slot: 'fixed', html: `<h2>Controller plugins</h2>${table(['Plugin', 'State', 'Error'], rows, 'No plugin is configured on this controller.')}` };
}

/** Names the node, plugin and error an event is about; anything else is shown as redacted, truncated JSON. */
export function eventSummary(data: unknown): string {
  if (!data || typeof data !== 'object') return data === undefined ? '' : truncate(String(data), 160);
  const o = data as Record<string, unknown>;
  const parts: string[] = [];
  const node = o.node as { name?: unknown } | null | undefined;
  if (node && typeof node === 'object' && typeof node.name === 'string') parts.push(`node ${node.name}`);
  if (typeof o.plugin === 'string') parts.push(`plugin ${o.plugin}`);
  if (typeof o.previous === 'string') parts.push(`was ${o.previous}`);
  if (typeof o.error === 'string') parts.push(scrub(o.error));
  if (parts.length) return truncate(parts.join(' · '), 200);
  return truncate(scrub(JSON.stringify(redactSecrets(o))), 160);
}

export function eventsSection(d: ViewDeps): Section {
  const rows = d.events.list(EVENTS_SHOWN).map((e) => {
    const ts = Date.parse(e.ts);
    const kind = e.event.endsWith('.down') || e.event.endsWith('.failed') ? 'bad' : e.event.endsWith('.up') || e.event.endsWith('.recovered') ? 'ok' : '';
    return `<tr>${cell('When', timeCell(ts))}${cell('Event', `<span class="ev ${kind}">${esc(e.event)}</span>`)}${cell('Details', esc(eventSummary(e.data)))}</tr>`;
  });
  return { id: 's-events', slot: 'fixed', html: `<h2>Recent events</h2>${table(['When', 'Event', 'Details'], rows, 'No event since the controller started.', 'events')}` };
}

export function webhooksSection(d: ViewDeps, deadCount: number): Section {
  const subs = d.subs.list();
  const subRows = subs.map((s) => `<tr>${cell('Receiver', `<code>${esc(redactUrl(s.url))}</code>${s.description ? `<div class="muted small">${esc(s.description)}</div>` : ''}`)}${cell('Events', chips(s.events.map((e) => `<span class="chip">${esc(e)}</span>`)))}</tr>`);
  const recent = d.outbox.list({ limit: DELIVERIES_SHOWN }).map((dl) => {
    const outcome = dl.lastError ? esc(truncate(scrub(dl.lastError), 120)) : dl.lastStatus ? `HTTP ${esc(dl.lastStatus)}` : '<span class="muted">—</span>';
    return `<tr>${cell('Event', esc(dl.event))}${cell('Receiver', `<code>${esc(dl.url)}</code>`)}${cell('State', badge(dl.state))}${cell('Attempts', esc(dl.attempts), 'num')}${cell('Last result', outcome)}${cell('Created', timeCell(dl.createdAt))}</tr>`;
  });
  return {
    id: 's-webhooks',
    slot: 'fixed',
    html:
      `<h2>Webhooks</h2><p class="counts"><span>${badge('pending')} <strong data-count="pending">${esc(d.outbox.depth())}</strong></span> <span>${badge('dead')} <strong data-count="dead">${esc(deadCount)}</strong></span></p>` +
      `<h3>Subscriptions</h3>${table(['Receiver', 'Events'], subRows, 'No subscription. Add one with `outpost webhooks add`.')}` +
      `<h3>Latest deliveries</h3>${table(['Event', 'Receiver', 'State', 'Attempts', 'Last result', 'Created'], recent, 'Nothing delivered yet.')}`,
  };
}

/** Each plugin panel renders alone: a slow or throwing panel shows its own error and never blanks the page. */
export async function panelSections(d: ViewDeps): Promise<Section[]> {
  return Promise.all(
    d.plugins.panels().map(async ({ plugin, panel }) => {
      let body: string;
      let timer: NodeJS.Timeout | undefined;
      try {
        body = await Promise.race([
          Promise.resolve().then(() => panel.render()),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not render within ${PANEL_TIMEOUT_MS} ms`)), PANEL_TIMEOUT_MS);
          }),
        ]);
      } catch (err) {
        body = `<p class="bad">Panel unavailable: ${esc(truncate(scrub((err as Error)?.message ?? String(err)), 200))}</p>`;
      } finally {
        clearTimeout(timer);
      }
      return { id: `p-${plugin.replace(/[^a-zA-Z0-9_-]/g, '_')}`, slot: 'panel' as const, html: `<h2>${esc(panel.title)} <span class="muted small">${esc(plugin)}</span></h2><div class="panel-body">${body}</div>` };
    }),
  );
}

export async function allSections(d: ViewDeps): Promise<Section[]> {
  const now = Date.now();
  const deadCount = d.outbox.list({ state: 'dead', limit: 100_000 }).length;
  const panels = await panelSections(d);
  return [summarySection(d, deadCount), nodesSection(d, now), ...panels, eventsSection(d), webhooksSection(d, deadCount), pluginsSection(d)];
}
