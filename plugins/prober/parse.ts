import { isIP } from 'node:net';
import { idProblem } from '../sdk/index.ts';
import { isValidTarget } from './checks/target.ts';
import { CODES, IpliveError } from './envelope.ts';
import { DEFAULT_LEVEL, isLevel } from './quorum.ts';
import type { Group, Protocol, ProberConfig } from './schema.ts';

const CONTROL = /[\u0000-\u001f\u007f]/;

export function field(fields: Record<string, unknown>, name: string): string | undefined {
  const v = fields[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v !== 'string') throw new IpliveError(CODES.badParam, `${name} must be a string or a number`);
  const t = v.trim();
  return t === '' ? undefined : t;
}

export function required(fields: Record<string, unknown>, name: string): string {
  const v = field(fields, name);
  if (v === undefined) throw new IpliveError(CODES.missing, `Lack of Param: ${name}`);
  return v;
}

export function int(fields: Record<string, unknown>, name: string, min: number, max: number, dflt?: number): number | undefined {
  const v = field(fields, name);
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v)) throw new IpliveError(CODES.badParam, `Param Error: ${name} must be an integer, got "${v.slice(0, 40)}"`);
  const n = Number(v);
  if (n < min || n > max) throw new IpliveError(CODES.badParam, `Param Error: ${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Any id iplive takes (app_name, group_id, record ids, node refs): the shared rule, in iplive's envelope. */
export function ipliveId(v: string, name: string): string {
  const problem = idProblem(v, name);
  if (problem) throw new IpliveError(CODES.badParam, `Param Error: ${problem}`);
  return v;
}

export function groupId(fields: Record<string, unknown>): string {
  const v = ipliveId(required(fields, 'group_id'), 'group_id');
  if (!/^\d{1,18}$/.test(v)) throw new IpliveError(CODES.badParam, `Param Error: group_id must be a non-negative integer, got "${v.slice(0, 40)}"`);
  return String(Number(v));
}

export function recordId(v: string, name = 'record_id'): string {
  return ipliveId(v, name);
}

export function target(v: string, name = 'ip'): string {
  if (!isValidTarget(v)) throw new IpliveError(CODES.badParam, `Param Error: ${name} "${v.slice(0, 60)}" is not an IP address or hostname`);
  return v;
}

function split(v: string): string[] {
  return v.split(':').map((s) => s.trim());
}

const DEFAULT_PORT: Record<Protocol, number> = { http: 80, https: 443, tcp: 0, icmp: 0 };

/** operate_monitor's fields → a group, or the iplive error naming the first bad field. */
export function parseGroup(fields: Record<string, unknown>, cfg: ProberConfig, app: string, now: number, previous?: Group): Group {
  const gid = groupId(fields);
  const recordIds = split(required(fields, 'record_ids')).map((r) => recordId(r, 'record_ids'));
  const ips = split(required(fields, 'ips')).map((ip) => target(ip, 'ips'));
  if (recordIds.length !== ips.length) throw new IpliveError(CODES.invalid, `record_ids has ${recordIds.length} entries but ips has ${ips.length}; they pair by position`);
  if (new Set(recordIds).size !== recordIds.length) throw new IpliveError(CODES.invalid, 'record_ids holds the same id twice');

  const level = int(fields, 'level', -1000, 1000, DEFAULT_LEVEL)!;
  if (!isLevel(level)) throw new IpliveError(CODES.invalid, `level ${level} is not one of 0, 1, 2, 4`);

  const protocol = (field(fields, 'protocol') ?? 'http').toLowerCase();
  if (protocol === 'udp') throw new IpliveError(CODES.invalid, 'protocol udp is not supported: use http, https, tcp or icmp');
  if (!['http', 'https', 'tcp', 'icmp'].includes(protocol)) throw new IpliveError(CODES.invalid, `protocol "${protocol.slice(0, 20)}" is not one of http, https, tcp, icmp`);
  const proto = protocol as Protocol;

  let port = int(fields, 'port', 1, 65535) ?? DEFAULT_PORT[proto];
  if (proto === 'tcp' && !port) throw new IpliveError(CODES.missing, 'Lack of Param: port (tcp needs one)');
  if (proto === 'icmp') port = 0;

  let path = field(fields, 'path') ?? '/';
  if (!path.startsWith('/')) path = `/${path}`;
  if (CONTROL.test(path) || /\s/.test(path) || path.length > 2048) throw new IpliveError(CODES.badParam, 'Param Error: path must be a URL path without spaces or control characters');

  const domain = field(fields, 'domain') ?? '';
  if (domain && !isValidTarget(domain)) throw new IpliveError(CODES.badParam, `Param Error: domain "${domain.slice(0, 60)}" is not a hostname`);
  const cookies = field(fields, 'cookies') ?? '';
  if (CONTROL.test(cookies) || cookies.length > 4096) throw new IpliveError(CODES.badParam, 'Param Error: cookies must not hold control characters (max 4096)');

  const httpCode = int(fields, 'http_code', 100, 599) ?? null;
  const interval = int(fields, 'interval', 0, 86_400, 60)!;
  if (interval < cfg.minInterval) throw new IpliveError(CODES.badParam, `Param Error(scan interval not valid): interval must be at least ${cfg.minInterval} s, got ${interval}`);
  const timeout = int(fields, 'timeout', 1, 120, 3)!;
  const retryCount = int(fields, 'retry_count', 0, 10, 0)!;
  if (timeout * (retryCount + 1) >= interval) throw new IpliveError(CODES.badParam, `Param Error: timeout × (retry_count + 1) = ${timeout * (retryCount + 1)} s must be shorter than the interval (${interval} s)`);

  const nodeRefs = (field(fields, 'node_ips') ?? '').split(/[:,]/).map((s) => s.trim()).filter(Boolean);
  for (const ref of nodeRefs) ipliveId(ref, 'node_ips entry');

  const callbackUrl = field(fields, 'callback_url') ?? null;
  if (callbackUrl !== null) {
    let u: URL | undefined;
    try {
      u = new URL(callbackUrl);
    } catch {
      u = undefined;
    }
    if (!u || !['http:', 'https:'].includes(u.protocol)) throw new IpliveError(CODES.badParam, 'Param Error: callback_url must be an http(s) URL');
  }

  return {
    key: groupKey(app, gid),
    app,
    groupId: gid,
    protocol: proto,
    port,
    path,
    domain,
    cookies,
    httpCode,
    interval,
    timeout,
    retryCount,
    level,
    nodeRefs,
    callbackUrl,
    records: recordIds.map((id, i) => ({ id, ip: ips[i] })),
    createdAt: previous?.createdAt ?? now,
    updatedAt: now,
  };
}

export function groupKey(app: string, gid: string): string {
  return `${app}:${gid}`;
}

export function validNodeIp(v: string): string {
  if (!isIP(v)) throw new IpliveError(CODES.badParam, `Param Error: node_ip "${v.slice(0, 60)}" is not an IP address`);
  return v;
}
