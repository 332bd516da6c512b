import { badge, html, muted, table, timeAgo, raw, type Html } from '../../plugins/sdk/index.ts';
import type { Registry } from '../registry.ts';
import type { ControllerPluginHost } from '../plugin-host.ts';
import type { EventLog } from '../event-log.ts';
import type { Outbox } from '../webhooks/outbox.ts';
import type { Subscriptions } from '../webhooks/subscriptions.ts';
import type { JoinTokens } from '../tokens.ts';
import { truncate } from './html.ts';
import { scrub } from './scrub.ts';
import { nodesSection } from './nodes-view.ts';
import type { ControllerCluster } from '../cluster.ts';
import { controllersSection } from './cluster-view.ts';
import { DELIVERIES_SHOWN, webhooksSection, type WebhookCounts } from './webhooks-view.ts';

export { scrub };

export interface ViewDeps {
  registry: Registry;
  plugins: ControllerPluginHost;
  events: EventLog;
  outbox: Outbox;
  subs: Subscriptions;
  tokens: JoinTokens;
  version: string;
  cluster: Pick<ControllerCluster, 'status'>;
}

/** One independently refreshed part of the page; `panel` sections come and go with their plugin. */
export interface Section {
  id: string;
  slot: 'fixed' | 'panel';
  html: string;
}

const PANEL_TIMEOUT_MS = 1500;
const EVENTS_SHOWN = 15;

export function summarySection(d: ViewDeps, { pending, dead: deadCount }: WebhookCounts): Section {
  const nodes = d.registry.list();
  const count = (s: string) => nodes.filter((n) => n.state === s).length;
  const plugins = d.plugins.status();
  const failed = plugins.filter((p) => p.state === 'failed').length + nodes.reduce((a, n) => a + n.plugins.filter((p) => p.state === 'failed').length, 0);
  const stat = (label: string, value: number | string, cls = '') => html`<div class="stat ${cls}"><span class="v">${value}</span><span class="l">${label}</span></div>`;
  return {
    id: 's-summary',
    slot: 'fixed',
    html: html`<h2 class="sr-only">Summary</h2><div class="stats">${[
      stat('nodes up', `${count('up')}/${nodes.length}`, count('up') === nodes.length && nodes.length ? 'ok' : ''),
      stat('nodes down', count('down'), count('down') ? 'bad' : ''),
      stat('plugins failed', failed, failed ? 'bad' : ''),
      stat('webhooks pending', pending, pending ? 'warn' : ''),
      stat('webhooks dead', deadCount, deadCount ? 'bad' : ''),
    ]}</div>`.value,
  };
}

export function pluginsSection(d: ViewDeps): Section {
  const rows = d.plugins.status().map((p) => ({ attrs: { 'data-plugin': p.name }, cells: [p.name, badge(p.state), p.error ? truncate(scrub(p.error), 300) : muted('—')] }));
  return { id: 's-plugins', slot: 'fixed', html: html`<h2>Controller plugins</h2>${table({ columns: ['Plugin', 'State', 'Error'], rows, empty: 'No plugin is configured on this controller.' })}`.value };
}

/**
 * Names the node, plugin and error an event is about; anything else is shown as truncated JSON. Event
 * data holds secrets only as Secret values, which were `***` when the event was recorded; the text
 * scrub is for what foreign text (receivers' errors, hand-written payloads) might quote.
 */
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
  return truncate(scrub(JSON.stringify(o)), 160);
}

export function eventsSection(d: ViewDeps): Section {
  const rows = d.events.list(EVENTS_SHOWN).map((e) => {
    const kind = e.event.endsWith('.down') || e.event.endsWith('.failed') ? 'bad' : e.event.endsWith('.up') || e.event.endsWith('.recovered') ? 'ok' : '';
    return { cells: [timeAgo(Date.parse(e.ts)), html`<span class="ev ${kind}">${e.event}</span>`, eventSummary(e.data)] };
  });
  return { id: 's-events', slot: 'fixed', html: html`<h2>Recent events</h2>${table({ columns: ['When', 'Event', 'Details'], rows, empty: 'No event recorded yet.', cls: 'events' })}`.value };
}

/** Each plugin panel renders alone: a slow or throwing panel shows its own error and never blanks the page. */
export async function panelSections(d: Pick<ViewDeps, 'plugins'>): Promise<Section[]> {
  return Promise.all(
    d.plugins.panels().map(async ({ plugin, panel }) => {
      let body: string | Html;
      let timer: NodeJS.Timeout | undefined;
      try {
        body = await Promise.race([
          Promise.resolve().then(() => panel.render()),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not render within ${PANEL_TIMEOUT_MS} ms`)), PANEL_TIMEOUT_MS);
          }),
        ]);
      } catch (err) {
        body = html`<p class="bad">Panel unavailable: ${truncate(scrub((err as Error)?.message ?? String(err)), 200)}</p>`;
      } finally {
        clearTimeout(timer);
      }
      // A plain string from a panel is its markup (the contract says it escaped what it embeds).
      const markup = typeof body === 'string' ? raw(body) : body;
      return { id: `p-${plugin.replace(/[^a-zA-Z0-9_-]/g, '_')}`, slot: 'panel' as const, html: html`<h2>${panel.title} <span class="muted small">${plugin}</span></h2><div class="panel-body">${markup}</div>`.value };
    }),
  );
}

export async function allSections(d: ViewDeps): Promise<Section[]> {
  const now = Date.now();
  // Read once for both sections: the outbox's queue may be in a database.
  const [pending, dead, recent] = await Promise.all([d.outbox.depth(), d.outbox.list({ state: 'dead', limit: 100_000 }), d.outbox.list({ limit: DELIVERIES_SHOWN })]);
  const counts: WebhookCounts = { pending, dead: dead.length };
  const panels = await panelSections(d);
  return [summarySection(d, counts), nodesSection(d, now), ...panels, eventsSection(d), webhooksSection(d, counts, recent), pluginsSection(d), controllersSection(d.cluster.status())];
}
