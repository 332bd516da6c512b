import { actionButton, badge, domId, form, html, muted, table, type DashboardPanel, type Html } from '../sdk/index.ts';
import type { Prober } from './controller.ts';
import { describeGroup } from './rest.ts';

const MAX_GROUPS = 200;
const LEVEL_OPTIONS = [
  { value: '4', label: '4: every probe node; down when all fail' },
  { value: '0', label: '0: 3 nodes; down when 2 fail' },
  { value: '1', label: '1: 2 nodes; down when 1 fails' },
  { value: '2', label: '2: 7 nodes; down when 5 fail' },
];

/** The fields of /operate_monitor, posted to the admin twin of it (no caller token: the session is the admin). */
function addMonitor(p: Prober): Html {
  const apps = Object.keys(p.cfg.apps).sort();
  if (!apps.length) return html`<p class="muted">No application is configured: add one under <code>apps</code> in the prober config to add monitors here.</p>`;
  return form({
    id: 'prober-add-monitor',
    action: '/api/v1/prober/monitors',
    submit: 'Add monitor',
    fields: [
      { name: 'app_name', label: 'Application', type: 'select', options: apps, value: apps[0] },
      { name: 'group_id', label: 'Group id', type: 'number', min: 0, required: true },
      { name: 'record_ids', label: 'Record ids', required: true, placeholder: '11:12', hint: 'separated by ":", paired by position with the targets' },
      { name: 'ips', label: 'Targets', required: true, placeholder: '203.0.113.7:web.example.net', hint: 'IP addresses or host names, separated by ":"' },
      { name: 'protocol', label: 'Protocol', type: 'select', value: 'http', options: ['http', 'https', 'tcp', 'icmp'] },
      { name: 'port', label: 'Port', type: 'number', min: 1, max: 65535, hint: 'default 80 for http, 443 for https; tcp needs one' },
      { name: 'path', label: 'Path', placeholder: '/', hint: 'http(s) only' },
      { name: 'domain', label: 'Host header', placeholder: 'www.example.net', hint: 'http(s) only' },
      { name: 'http_code', label: 'Expected HTTP code', type: 'number', min: 100, max: 599, hint: 'default any 2xx or 3xx' },
      { name: 'level', label: 'Level', type: 'select', value: '4', options: LEVEL_OPTIONS },
      { name: 'interval', label: 'Interval (s)', type: 'number', min: p.cfg.minInterval, max: 86_400, value: Math.max(60, p.cfg.minInterval) },
      { name: 'timeout', label: 'Timeout (s)', type: 'number', min: 1, max: 120, value: 3 },
      { name: 'retry_count', label: 'Retries', type: 'number', min: 0, max: 10, value: 0 },
    ],
    result: { show: 'json' },
    success: 'Monitor {monitor.app_name} / {monitor.group_id} saved: {message}.',
  });
}

function stopMonitor(app: string, groupId: number): Html {
  const name = `${app} / ${groupId}`;
  return actionButton({
    id: domId('prober-stop', `${app}:${groupId}`),
    action: '/api/v1/prober/monitors/stop',
    fields: { app_name: app, group_id: groupId },
    label: 'Stop',
    ariaLabel: `Stop monitor ${name}`,
    danger: true,
    confirm: `Stop monitor ${name}? Its probes and callbacks end and its record states are forgotten.`,
    success: `Monitor ${name} stopped.`,
  });
}

/** Groups, their records, what each probe node saw last and when each record last changed; add and stop monitors. */
export function proberPanel(p: Prober): DashboardPanel {
  return {
    title: 'Probes',
    render() {
      const keys = Object.keys(p.monitors.data.groups).sort();
      const nodes = p.probeNodes();
      const probeNodes = nodes.map((n, i) => html`${i ? ', ' : ''}${n.name} (${n.live ? 'live' : 'down'})`);
      const head = html`<p>${nodes.filter((n) => n.live).length} of ${nodes.length} probe nodes live: ${nodes.length ? probeNodes : 'none'}</p>`;
      const rows = keys.slice(0, MAX_GROUPS).flatMap((k) => {
        const g = describeGroup(p, k);
        return g.records.map((r, i) => {
          const views = Object.entries(r.nodes).map(([n, v], j) => html`${j ? html`<br>` : ''}<span class="view" title="${v.at}">${n}: ${v.status === 'error' ? html`error: ${v.error}` : html`${v.status} ${v.res_time} ms`}</span>`);
          const group = {
            content: html`${g.app_name} / ${g.group_id}<br><small>${g.protocol} level ${g.level} every ${g.interval} s<br>${g.probe_nodes.join(', ') || 'no probe node'}</small><br>${stopMonitor(g.app_name, g.group_id)}`,
            rowspan: g.records.length,
          };
          const cells = [r.record_id, r.ip, { content: html`${badge(r.state)}${r.degraded ? ' (degraded)' : ''}`, cls: `state-${r.state}` }, r.status ?? '', views.length ? views : '—', r.last_change ?? muted('—')];
          return i === 0 ? { attrs: { 'data-group': k }, cells: [group, ...cells] } : { attrs: { 'data-group': k }, cells, startColumn: 1 };
        });
      });
      const list = table({ columns: ['Group', 'Record', 'Target', 'State', 'Status', 'Each node', 'Last change'], rows, empty: 'No monitors.' });
      const more = keys.length > MAX_GROUPS ? html`<p>${keys.length - MAX_GROUPS} more groups: see /api/v1/prober/groups.</p>` : '';
      return html`${head}${list}${more}<details id="prober-add" class="actions"${keys.length ? '' : html` open`}><summary>Add a monitor</summary>${addMonitor(p)}</details>`;
    },
  };
}
