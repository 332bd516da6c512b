import { randomBytes } from 'node:crypto';
import { parseWireJson, type HttpRequest, type HttpResult, type Route } from '../sdk/index.ts';
import { isLocalCaller } from '../sdk/client-ip.ts';
import { CODES, IpliveError, ipliveError, ok } from './envelope.ts';
import { field, groupId, int, ipliveId, parseGroup, recordId, required, target, validNodeIp, groupKey } from './parse.ts';
import { roundStart } from './rounds.ts';
import { LEVELS } from './quorum.ts';
import { CONN_ERROR, TIMEOUT, UP, type Group } from './schema.ts';
import type { Vote } from './state.ts';
import type { StateRecord } from './store.ts';
import type { Prober } from './controller.ts';
import { hashPasswd, PasswdVerifier } from './passwd.ts';


function appOf(p: Prober, fields: Record<string, unknown>): string {
  const app = ipliveId(required(fields, 'app_name'), 'app_name');
  if (!Object.hasOwn(p.cfg.apps, app)) throw new IpliveError(CODES.app, `Not found valid function for app name "${app.slice(0, 64)}"`);
  return app;
}

/**
 * The group a change names, as the last write to it left it: first what other controllers sharing the
 * database appended up to now (a client creating through one and changing through another a moment
 * later, behind a load balancer, must find its monitor and must not undo the change before).
 */
async function groupOf(p: Prober, fields: Record<string, unknown>): Promise<Group> {
  const app = appOf(p, fields);
  const gid = groupId(fields);
  await p.monitors.refresh();
  const g = p.monitors.data.groups[groupKey(app, gid)];
  if (!g) throw new IpliveError(CODES.invalid, `no monitor for app_name "${app}" and group_id ${gid}`);
  return g;
}

/** operate_monitor without the caller check: creates or replaces a group (seed route and admin route). */
export async function applyMonitor(p: Prober, fields: Record<string, unknown>): Promise<{ created: boolean; key: string; info: Record<string, unknown> }> {
  const app = appOf(p, fields);
  const key = groupKey(app, groupId(fields));
  // Made through another controller a moment ago: an update (its creation time kept), not a creation.
  if (!p.monitors.data.groups[key]) await p.monitors.refresh();
  const previous = p.monitors.data.groups[key];
  const g = parseGroup(fields, p.cfg, app, Date.now(), previous);
  if (g.nodeRefs.length) {
    const nodes = p.probeNodes();
    const unknown = g.nodeRefs.filter((r) => !nodes.some((n) => r === n.id || r === n.name || r === n.address));
    if (unknown.length) throw new IpliveError(CODES.invalid, `node_ips: no probe node "${unknown[0]}" (register it with /add_node or enroll an agent running the prober)`);
  }
  // Records that left the group take their state with them.
  await p.putGroup(g);
  const nodes = (p.picks.get(key) ?? []).map((id) => p.nodeName(id));
  return { created: !previous, key, info: { app_name: app, group_id: Number(g.groupId), records: g.records.length, level: g.level, interval: g.interval, nodes, degraded: nodes.length < levelNodes(g.level, nodes.length) } };
}

/** stop_monitor without the caller check. */
export async function stopGroup(p: Prober, fields: Record<string, unknown>): Promise<{ app_name: string; group_id: number }> {
  const g = await groupOf(p, fields);
  await p.removeGroup(g.key);
  return { app_name: g.app, group_id: Number(g.groupId) };
}

/** iplive's seed API: operate_monitor, update_monitor, stop_monitor, add_node, deal (+ node_tasks for external probers). */
export function seedRoutes(p: Prober): Route[] {
  const cfg = () => p.cfg;
  const passwds = new PasswdVerifier(p.ctx.metrics.counter('outpost_prober_passwd_checks_total', 'Probe node passwd checks by result: scrypt_ok and scrypt_wrong (one per scrypt run), shared (joined an identical check in flight), cached (verified before, no scrypt), limited (refused before any scrypt).'));

  /**
   * The per-caller token (form field `token`); loopback callers are exempt as in iplive unless configured
   * otherwise — only callers on this host itself, never a request a proxy relayed (isLocalCaller).
   */
  function checkToken(req: HttpRequest): void {
    if (cfg().trustLoopback && isLocalCaller(req)) return;
    const expected = (cfg().callers.find((c) => c.ip === req.ip) ?? cfg().callers.find((c) => c.ip === '*'))?.token;
    const given = field(req.fields, 'token');
    if (!expected?.matches(given)) throw new IpliveError(CODES.token, `Token not right for caller ${req.ip}`);
  }

  async function operateMonitor(req: HttpRequest): Promise<HttpResult> {
    checkToken(req);
    const r = await applyMonitor(p, req.fields);
    return ok(r.created ? 'insert monitor successfully.' : 'update monitor successfully.', r.info);
  }

  async function updateMonitor(req: HttpRequest): Promise<HttpResult> {
    checkToken(req);
    const g = await groupOf(p, req.fields);
    const rid = recordId(required(req.fields, 'record_id'));
    const ip = target(required(req.fields, 'ip'));
    if (!g.records.some((r) => r.id === rid)) throw new IpliveError(CODES.invalid, `group ${g.groupId} has no record_id ${rid}`);
    await p.putGroup({ ...g, records: g.records.map((r) => (r.id === rid ? { id: rid, ip } : r)), updatedAt: Date.now() });
    return ok('update monitor successfully.', { group_id: Number(g.groupId), record_id: rid, ip });
  }

  async function stopMonitor(req: HttpRequest): Promise<HttpResult> {
    checkToken(req);
    const { group_id } = await stopGroup(p, req.fields);
    return ok('stop monitor successfully.', { group_id });
  }

  async function addNode(req: HttpRequest): Promise<HttpResult> {
    checkToken(req);
    const ip = validNodeIp(required(req.fields, 'node_ip'));
    const passwd = required(req.fields, 'passwd');
    if (passwd.length < 8 || passwd.length > 256) throw new IpliveError(CODES.badParam, 'Param Error: passwd must be 8 to 256 characters');
    const salt = randomBytes(16).toString('hex');
    const hash = await hashPasswd(passwd, salt);
    const existed = !!p.monitors.data.probeNodes[ip];
    await p.putNode({ ip, salt, hash, addedAt: Date.now(), lastDeal: p.monitors.data.probeNodes[ip]?.lastDeal ?? null });
    const node = p.probeNodes().find((n) => n.address === ip);
    return ok(existed ? 'update node successfully.' : 'add node successfully.', { node_ip: ip, kind: node?.kind ?? 'external', node: node?.name ?? ip });
  }

  /** The registered external prober calling, or 1004 (also once it failed too often: then without checking). */
  async function caller(req: HttpRequest) {
    const reg = p.monitors.data.probeNodes[req.ip];
    if (!reg) throw new IpliveError(CODES.token, `unknown probe node ${req.ip}: register it with /add_node first`);
    const passwd = required(req.fields, 'passwd');
    const r = await passwds.verify(req.ip, passwd, reg);
    if (r.ok) return reg;
    if (r.limited) throw new IpliveError(CODES.token, `too many wrong passwd from ${req.ip}: retry in ${r.retryAfterS} s`);
    throw new IpliveError(CODES.token, 'passwd not right for this probe node');
  }

  async function deal(req: HttpRequest): Promise<HttpResult> {
    const reg = await caller(req);
    let ts = int(req.fields, 'timestamp', 0, Number.MAX_SAFE_INTEGER);
    if (ts === undefined) throw new IpliveError(CODES.missing, 'Lack of Param: timestamp');
    if (ts < 1e12) ts *= 1000;
    const raw = req.fields.data;
    if (raw === undefined || raw === null || raw === '') throw new IpliveError(CODES.missing, 'Lack of Param: data');
    let items: unknown;
    if (typeof raw === 'string') {
      try {
        items = parseWireJson(raw);
      } catch (err) {
        throw new IpliveError(CODES.badParam, `Param Error: data is not JSON: ${(err as Error).message}`);
      }
    } else items = raw;
    if (!Array.isArray(items)) throw new IpliveError(CODES.badParam, 'Param Error: data must be a JSON list of {server_id, res_time, last_status}');
    const node = `ext:${reg.ip}`;
    const votes: Array<{ record: string; vote: Vote }> = [];
    for (const [i, it] of items.entries()) {
      if (!it || typeof it !== 'object') throw new IpliveError(CODES.badParam, `Param Error: data[${i}] is not an object`);
      const o: Record<string, unknown> = Object.fromEntries(Object.entries(it));
      const sid = field(o, 'server_id');
      const st = field(o, 'last_status');
      if (sid === undefined) throw new IpliveError(CODES.missing, `Lack of Param: data[${i}].server_id`);
      recordId(sid, `data[${i}].server_id`);
      if (st === undefined || !/^\d{1,3}$/.test(st)) throw new IpliveError(CODES.badParam, `Param Error: data[${i}].last_status must be a status or HTTP code`);
      const rt = Number(field(o, 'res_time') ?? 0);
      if (!Number.isFinite(rt) || rt < 0) throw new IpliveError(CODES.badParam, `Param Error: data[${i}].res_time must be a number of ms`);
      votes.push({ record: sid, vote: { s: Number(st), t: Math.round(rt), at: ts } });
    }
    let accepted = 0;
    let late = 0;
    const sink: StateRecord[] = [];
    for (const g of p.tasksFor(node)) {
      const mine = votes.filter((v) => g.records.some((r) => r.id === v.record)).map((v) => ({ record: v.record, vote: { ...v.vote, s: statusFor(g, v.vote.s) } }));
      if (!mine.length) continue;
      const r = p.acceptVotes(g, roundStart(ts, g.interval), node, mine, sink);
      accepted += r.accepted;
      late += r.late;
    }
    await p.commitVotes(sink);
    await p.monitors.dealt(reg.ip, Date.now());
    return ok('deal successfully.', { accepted, late, ignored: votes.length - accepted - late });
  }

  /** Outpost addition: what an external prober should probe (iplive pushed this to its nodes). */
  async function nodeTasks(req: HttpRequest): Promise<HttpResult> {
    const reg = await caller(req);
    const groups = p.tasksFor(`ext:${reg.ip}`).map((g) => ({
      app_name: g.app,
      group_id: Number(g.groupId),
      protocol: g.protocol,
      port: g.port,
      path: g.path,
      domain: g.domain,
      cookies: g.cookies,
      http_code: g.httpCode,
      interval: g.interval,
      timeout: g.timeout,
      retry_count: g.retryCount,
      records: g.records.map((r) => ({ server_id: r.id, ip: r.ip })),
    }));
    return ok('get tasks successfully.', { groups });
  }

  const route = (path: string, handler: (req: HttpRequest) => Promise<HttpResult> | HttpResult): Route => ({ method: 'POST', path, auth: 'none', error: ipliveError, handler });
  return [route('/operate_monitor', operateMonitor), route('/update_monitor', updateMonitor), route('/stop_monitor', stopMonitor), route('/add_node', addNode), route('/deal', deal), route('/node_tasks', nodeTasks)];
}

/** Level 4 asks for every node: degraded only when there is none. */
function levelNodes(level: number, have: number): number {
  return LEVELS[level].nodes === Infinity ? Math.max(1, have) : LEVELS[level].nodes;
}

/** An external prober's last_status is iplive's own status (1–3) or the HTTP code it saw. */
function statusFor(g: Group, s: number): number {
  if (s === UP || s === CONN_ERROR || s === TIMEOUT) return s;
  const good = g.httpCode === null ? s >= 200 && s < 400 : s === g.httpCode;
  return good ? UP : s;
}
