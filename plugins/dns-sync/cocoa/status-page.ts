/**
 * `GET /v1/status`: CocoaSyncer's HTML status page (templates/status.tmpl: title `CocoaSyncer -
 * <nodeName>`, a table of the node's basics), plus what the leader knows: the nodes with their
 * watchdog and every line with its node, last switch and pending retry. Nothing secret is in its
 * inputs, so nothing secret can be on the page.
 */
import type { HttpResult } from '../../sdk/http.ts';
import type { LineStatus } from '../status.ts';
import { escapeMarkup as esc } from './markup.ts';
import { liveCount, type ClusterView } from './view.ts';

const iso = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString());

function table(head: string[], rows: unknown[][]): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<thead><tr>${th}</tr></thead>\n<tbody>\n${tr}\n</tbody>\n</table>`;
}

export function statusPage(view: ClusterView, lines: readonly LineStatus[], now: number): string {
  const basics = table(
    ['nodeName', 'apiPort', 'nodeAddress', 'workMode', 'reverseProxy', 'timeout (分)', 'createdAt', 'updatedAt', 'configImported'],
    [[view.nodeName, view.apiPort, view.nodeAddress, 'leader', false, view.timeoutMinutes, iso(view.createdAt), iso(view.updatedAt), true]],
  );
  const nodes = table(
    ['node', 'address', 'ISPs', 'networkType', 'status', 'last heartbeat', 'seconds since'],
    view.nodes.map((n) => [n.name, n.address, n.ISPs.join(', '), n.networkType, n.up ? '200 alive' : '504 lost', iso(n.lastBeat), n.lastBeat === null ? '' : Math.round((now - n.lastBeat) / 1000)]),
  );
  const lineRows = table(
    ['service', 'record', 'line', 'type', 'node', 'address', 'why', 'last switch', 'pending retry'],
    lines.map((l) => [
      l.service,
      l.name,
      l.line,
      l.recordType,
      l.node ?? '',
      l.address ?? (l.alert ? 'unchanged (no live node)' : ''),
      l.reason,
      l.lastSwitch ? `${iso(l.lastSwitch.at)} ${l.lastSwitch.from ?? '(empty)'} → ${l.lastSwitch.to}` : '',
      l.pending ? `attempt ${l.pending.attempt}, next at ${iso(l.pending.dueAt)}: ${l.pending.error}` : '',
    ]),
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CocoaSyncer - ${esc(view.nodeName)}</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f4f4f4}</style>
</head>
<body>
<h1>CocoaSyncer - ${esc(view.nodeName)}</h1>
${basics}
<h2>Nodes (${liveCount(view)}/${view.nodes.length} alive)</h2>
${nodes}
<h2>Lines</h2>
${lineRows}
</body>
</html>
`;
}

export function statusAnswer(view: ClusterView, lines: readonly LineStatus[], now: number): HttpResult {
  return { status: 200, contentType: 'text/html; charset=utf-8', text: statusPage(view, lines, now) };
}

/**
 * `GET /v1` and `/v1/`: CocoaSyncer's liveness page (templates/v1.tmpl), which old probes fetch for a
 * 200. The controller's `/` is the dashboard, which answers 200 as well.
 */
export function livenessAnswer(nodeName: string): HttpResult {
  const name = esc(nodeName);
  return {
    status: 200,
    contentType: 'text/html; charset=utf-8',
    text: `<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>CocoaSyncer - ${name}</title></head>\n<body><h1>CocoaSyncer - ${name}</h1><p>MafuMafu~ Outpost dns-sync is running here as the leader. <a href="/v1/status">Status</a></p></body>\n</html>\n`,
  };
}
