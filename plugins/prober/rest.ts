import { checkId, HttpError, restError, type HttpRequest, type HttpResult, type Route } from '../sdk/index.ts';
import type { Prober } from './controller.ts';
import type { HistoryEntry } from './state.ts';
import { NOT_PROBED } from './schema.ts';
import { applyMonitor, stopGroup } from './api.ts';
import { adminError } from './envelope.ts';

/** A group as the native API and the dashboard show it: cookies are hidden (they may carry a session). */
export function describeGroup(p: Prober, key: string) {
  const g = p.monitors.data.groups[key];
  const states = p.monitors.data.records[key] ?? {};
  const last = p.history.latest(key);
  return {
    app_name: g.app,
    group_id: Number(g.groupId),
    level: g.level,
    protocol: g.protocol,
    port: g.port,
    path: g.path,
    domain: g.domain,
    cookies: g.cookies ? '(set)' : '',
    http_code: g.httpCode,
    interval: g.interval,
    timeout: g.timeout,
    retry_count: g.retryCount,
    node_ips: g.nodeRefs,
    callback_url: g.callbackUrl ?? p.cfg.apps[g.app]?.callbackUrl ?? null,
    probe_nodes: (p.picks.get(key) ?? []).map((id) => p.nodeName(id)),
    last_round: last ? { timestamp: Math.floor(last.round / 1000), degraded: last.degraded, nodes: last.nodes, missing: last.missing } : null,
    records: g.records.map((r) => {
      const s = states[r.id];
      return {
        record_id: r.id,
        ip: r.ip,
        state: s?.state ?? 'unknown',
        status: s?.status ?? null,
        res_time: s?.resTime ?? null,
        degraded: s?.degraded ?? false,
        last_change: s?.lastChange ? new Date(s.lastChange).toISOString() : null,
        nodes: Object.fromEntries(Object.entries(s?.views ?? {}).map(([id, v]) => [p.nodeName(id), { status: v.status === NOT_PROBED ? 'error' : v.status, res_time: v.resTime, at: new Date(v.at).toISOString(), timing: v.timing ?? null, cert_expires: v.certExpires ?? null, error: v.error ?? null }])),
      };
    }),
  };
}

function parseSince(v: string | undefined): number {
  if (v === undefined || v === '') return 0;
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    return n < 1e12 ? n * 1000 : n;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new HttpError(400, `since must be unix seconds, ms or an ISO date, got "${v.slice(0, 40)}"`);
  return t;
}

export function restRoutes(p: Prober): Route[] {
  const groups = (): HttpResult => ({ json: { groups: Object.keys(p.monitors.data.groups).sort().map((k) => describeGroup(p, k)), probe_nodes: p.probeNodes().map(({ id, name, address, kind, live }) => ({ id, name, address, kind, live })) } });

  const results = (req: HttpRequest): HttpResult => {
    const since = parseSince(req.query.since);
    const group = req.query.group;
    const limit = req.query.limit ? Number(req.query.limit) : 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new HttpError(400, 'limit must be an integer from 1 to 100000');
    // "app:group_id" names one group; a bare group_id matches it in every app.
    const match = (e: HistoryEntry) => !group || e.g === group || e.g.slice(e.g.lastIndexOf(':') + 1) === group;
    if (group !== undefined) checkId(group, 'group');
    const list = p.history.query((e) => e.round >= since && match(e), limit);
    return {
      json: {
        retention_minutes: p.cfg.historyMinutes,
        results: list.map((e) => ({ app_name: e.g.slice(0, e.g.lastIndexOf(':')), group_id: Number(e.g.slice(e.g.lastIndexOf(':') + 1)), timestamp: Math.floor(e.round / 1000), decided_at: new Date(e.decidedAt).toISOString(), degraded: e.degraded, nodes: e.nodes, missing: e.missing, records: e.records })),
      },
    };
  };

  /** What one agent's prober is doing: assignment size, queue, lateness of check starts. */
  const nodeOf = (req: HttpRequest) => p.ctx.nodes.require(req.params.id, 'prober');
  const commandError = (err: unknown) => {
    throw new HttpError(502, `node did not answer: ${(err as Error).message}`);
  };
  const nodeStatus = async (req: HttpRequest): Promise<HttpResult> => ({ json: { node: nodeOf(req).name, status: await p.ctx.command(nodeOf(req).id, 'status', {}).catch(commandError) } });
  const resetStats = async (req: HttpRequest): Promise<HttpResult> => ({ json: { node: nodeOf(req).name, status: await p.ctx.command(nodeOf(req).id, 'reset-stats', {}).catch(commandError) } });

  /** operate_monitor and stop_monitor for admins (the dashboard's prober panel): same fields, no caller token. */
  const addMonitor = async (req: HttpRequest): Promise<HttpResult> => {
    const r = await applyMonitor(p, req.fields);
    return { status: r.created ? 201 : 200, json: { message: r.created ? 'monitor added' : 'monitor updated', monitor: r.info, group: describeGroup(p, r.key) } };
  };
  const stopMonitor = async (req: HttpRequest): Promise<HttpResult> => ({ json: { message: 'monitor stopped', stopped: await stopGroup(p, req.fields) } });

  return [
    { method: 'POST', path: '/api/v1/prober/monitors', auth: 'admin', error: adminError, handler: addMonitor },
    { method: 'POST', path: '/api/v1/prober/monitors/stop', auth: 'admin', error: adminError, handler: stopMonitor },
    { method: 'GET', path: '/api/v1/prober/nodes/:id', auth: 'admin', error: restError, handler: nodeStatus },
    { method: 'POST', path: '/api/v1/prober/nodes/:id/reset-stats', auth: 'admin', error: restError, handler: resetStats },
    { method: 'GET', path: '/api/v1/prober/groups', auth: 'admin', error: restError, handler: groups },
    { method: 'GET', path: '/api/v1/prober/results', auth: 'admin', error: restError, handler: results },
  ];
}
