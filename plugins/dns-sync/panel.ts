/**
 * The dashboard's DNS panel: per service × line the node and address it answers, why, its last
 * switch, its pending write and error; the nodes; what dry-run providers would write; "Re-sync now".
 * Everything shown comes from the decision and the status, which hold no secret.
 */
import { actionButton, badge, html, keyValues, muted, table, timeAgo, type DashboardPanel, type Html } from '../sdk/index.ts';
import type { Leader } from './leader.ts';
import { nodeRows } from './rest.ts';

const MAX_LINES = 300;

function resync(): Html {
  return actionButton({
    id: 'dns-sync-resync',
    action: '/api/v1/dns-sync/resync',
    label: 'Re-sync now',
    ariaLabel: 'Re-sync every DNS line now',
    result: { show: 'json' },
    success: 'Re-synced: {lastPass.written} lines written, {lastPass.switched} switched, {lastPass.failed} failed.',
  });
}

export function dnsPanel(leader: Leader): DashboardPanel {
  return {
    title: 'DNS',
    render() {
      const now = Date.now();
      const last = leader.lastPass();
      const lines = leader.lines();
      const summary = keyValues([
        ['Last evaluation', last ? html`${timeAgo(last.at, now)} (${last.kind}): ${last.written} written, ${last.switched} switched, ${last.unchanged} unchanged, ${last.failed} failed` : muted('none yet')],
        ['Pending writes', leader.retries.count() ? badge(`${leader.retries.count()} retrying`, 'warn') : '0'],
        ['Lines without a live node', last?.alerts ? badge(String(last.alerts), 'bad') : '0'],
      ]);
      const rows = lines.slice(0, MAX_LINES).map((l) => ({
        attrs: { 'data-line': l.key, 'data-node': l.node ?? '', 'data-pending': l.pending ? 'yes' : 'no' },
        cells: [
          l.service,
          l.name,
          l.line,
          l.recordType,
          l.alert ? html`${badge('no live node', 'bad')} ${l.node ?? ''}` : (l.node ?? muted('—')),
          l.address ?? muted('unchanged'),
          l.lastSwitch ? html`${timeAgo(l.lastSwitch.at, now)}: ${l.lastSwitch.from ?? '(empty)'} → ${l.lastSwitch.to}` : muted('—'),
          l.pending ? html`${badge(`attempt ${l.pending.attempt}`, 'warn')} next in ${Math.max(0, Math.round((l.pending.dueAt - now) / 1000))} s<br><small>${l.pending.error}</small>` : muted('—'),
          html`<small>${l.reason}</small>`,
        ],
      }));
      const lineTable = table({ columns: ['Service', 'Name', 'Line', 'Type', 'Node', 'Address', 'Last switch', 'Pending write', 'Why'], rows, empty: 'No line is managed: add services and nodes to the dns-sync config.' });
      const more = lines.length > MAX_LINES ? html`<p>${lines.length - MAX_LINES} more lines: see /api/v1/dns-sync/status.</p>` : '';
      const nodes = table({
        columns: ['Node', 'From', 'ISPs', 'Type', 'Address', 'State'],
        rows: nodeRows(leader).map((n) => ({ attrs: { 'data-dns-node': n.name }, cells: [n.name, n.source, n.ISPs.join(', '), n.networkType, [n.address, n.address6].filter(Boolean).join(' '), badge(n.up ? 'up' : 'down')] })),
        empty: 'No node declared.',
      });
      const dry = leader.dryRunRecords().filter((p) => p.records.length);
      const dryTable = dry.length
        ? html`<h3>What dry-run would write</h3>${table({
            columns: ['Provider', 'Name', 'Type', 'Values', 'TTL', 'Writes', 'Last'],
            rows: dry.flatMap((p) => p.records.map((r) => ({ cells: [p.provider, r.name, r.ref.type, r.values.join(', '), r.ttl, r.writes, timeAgo(r.writtenAt, now)] }))),
            empty: '',
          })}`
        : '';
      return html`${summary}${resync()}${lineTable}${more}<h3>Nodes</h3>${nodes}${dryTable}`;
    },
  };
}
