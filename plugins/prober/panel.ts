import type { DashboardPanel } from '../sdk/index.ts';
import type { Prober } from './controller.ts';
import { describeGroup } from './rest.ts';

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const MAX_GROUPS = 200;

/** Groups, their records, what each probe node saw last and when each record last changed. */
export function proberPanel(p: Prober): DashboardPanel {
  return {
    title: 'Probes',
    render() {
      const keys = Object.keys(p.monitors.data.groups).sort();
      const nodes = p.probeNodes();
      const head = `<p>${nodes.filter((n) => n.live).length} of ${nodes.length} probe nodes live: ${nodes.map((n) => `${esc(n.name)} (${n.live ? 'live' : 'down'})`).join(', ') || 'none'}</p>`;
      if (!keys.length) return `${head}<p>No monitors.</p>`;
      const rows = keys.slice(0, MAX_GROUPS).flatMap((k) => {
        const g = describeGroup(p, k);
        return g.records.map((r, i) => {
          const views = Object.entries(r.nodes)
            .map(([n, v]) => `<span class="view" title="${esc(v.at)}">${esc(n)}: ${v.status === 'error' ? `error: ${esc(v.error)}` : `${esc(v.status)} ${esc(v.res_time)} ms`}</span>`)
            .join('<br>');
          const group = i === 0 ? `<td rowspan="${g.records.length}">${esc(g.app_name)} / ${esc(g.group_id)}<br><small>${esc(g.protocol)} level ${esc(g.level)} every ${esc(g.interval)} s<br>${esc(g.probe_nodes.join(', ') || 'no probe node')}</small></td>` : '';
          return `<tr data-group="${esc(k)}">${group}<td>${esc(r.record_id)}</td><td>${esc(r.ip)}</td><td class="state-${esc(r.state)}">${esc(r.state)}${r.degraded ? ' (degraded)' : ''}</td><td>${esc(r.status ?? '')}</td><td>${views || '—'}</td><td>${esc(r.last_change ?? '—')}</td></tr>`;
        });
      });
      const more = keys.length > MAX_GROUPS ? `<p>${keys.length - MAX_GROUPS} more groups: see /api/v1/prober/groups.</p>` : '';
      return `${head}<table><thead><tr><th>Group</th><th>Record</th><th>Target</th><th>State</th><th>Status</th><th>Each node</th><th>Last change</th></tr></thead><tbody>${rows.join('')}</tbody></table>${more}`;
    },
  };
}
