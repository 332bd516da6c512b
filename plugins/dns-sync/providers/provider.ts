/**
 * What every DNS provider offers the writer: read a set of lines, write a set of lines. A line is one
 * record type of one ISP line of one record; a provider without ISP lines maps it to its own name
 * (lines.ts `lineRecordName`).
 */
import type { Line, RecordType } from '../lines.ts';
import type { ProviderType } from '../config.ts';
import { withoutSecrets, type Secret } from '../../sdk/secret.ts';

export interface LineRef {
  domain: string;
  /** Relative to the domain, `@` for the apex. */
  record: string;
  line: Line;
  type: RecordType;
}

export const lineKey = (r: LineRef) => `${r.record === '@' ? '' : `${r.record}.`}${r.domain}/${r.line}/${r.type}`;

/** What a line holds now; `values` empty when it has no record. */
export type LineRead = { ok: true; values: string[]; ttl?: number } | { ok: false; error: string };

export interface LineWrite {
  ref: LineRef;
  /** What the line must hold afterwards, exactly (other values of that line and type are replaced). */
  values: string[];
  ttl: number;
}

export type WriteOutcome = { ok: true } | { ok: false; error: string };

export interface DnsProvider {
  /** The config's key for it, e.g. `pdns-main`. */
  readonly name: string;
  readonly type: ProviderType;
  /** Whether lines are the provider's own (Aliyun) or separate names (lineName template). */
  readonly nativeLines: boolean;
  /** Keyed by lineKey; a failure of one lookup fails only the lines it covers. */
  read(refs: LineRef[]): Promise<Map<string, LineRead>>;
  /** One outcome per write, in order. Writes whose values already match are the caller's to skip. */
  write(writes: LineWrite[]): Promise<WriteOutcome[]>;
}

/** An error whose message names the provider and never holds one of its secrets. */
export class ProviderError extends Error {
  constructor(provider: { name: string; type: string }, what: string, detail: string, secrets: readonly Secret[]) {
    super(withoutSecrets(`provider "${provider.name}" (${provider.type}): ${what}: ${detail}`, secrets));
  }
}

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export interface HttpAnswer {
  status: number;
  text: string;
  json: unknown;
}

/**
 * One HTTP exchange with a provider API under a deadline. Network failures and timeouts become a
 * ProviderError naming the provider and the action (never the URL's query, which may be signed).
 */
export async function callApi(
  provider: { name: string; type: string },
  secrets: readonly Secret[],
  what: string,
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string; timeoutMs: number },
): Promise<HttpAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { method: init.method, headers: init.headers, body: init.body, signal: AbortSignal.timeout(init.timeoutMs), redirect: 'error' });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const detail = e.name === 'TimeoutError' ? `no answer within ${init.timeoutMs} ms` : (e.cause?.message ?? e.cause?.code ?? e.message);
    throw new ProviderError(provider, what, `${new URL(url).origin} unreachable (${detail})`, secrets);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** A short, single-line excerpt of an error body for messages. */
export function excerpt(text: string, max = 200): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

/** Map.groupBy, which Node 20 lacks. */
export function groupBy<T, K>(items: Iterable<T>, key: (item: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/** Runs fn over items with at most `limit` in flight, keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** RFC 5952 form of an IPv6 address (what PowerDNS and the clouds answer), any other value as given. */
export function canonicalAddress(value: string): string {
  if (!value.includes(':')) return value;
  try {
    return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  } catch {
    return value;
  }
}

export function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = a.map(canonicalAddress).sort();
  const y = b.map(canonicalAddress).sort();
  return x.every((v, i) => v === y[i]);
}

export interface ExistingRecord {
  id: string;
  value: string;
  ttl: number;
}

export interface LineEdit {
  update: Array<{ id: string; value: string }>;
  add: string[];
  remove: string[];
}

/**
 * The smallest set of record edits that leaves a line holding exactly `values` with `ttl`, for APIs
 * that edit one record at a time (Aliyun, Cloudflare). Records already right stay untouched (Alidns
 * refuses an update to the same value); a record already holding a wanted value with another TTL is
 * the one updated, so no two records ever hold the same value on the way.
 */
export function planLineEdit(existing: readonly ExistingRecord[], values: readonly string[], ttl: number): LineEdit {
  const wanted = values.map(canonicalAddress);
  const keep = existing.filter((r) => wanted.includes(canonicalAddress(r.value)) && r.ttl === ttl);
  const spare = existing.filter((r) => !keep.includes(r));
  const edit: LineEdit = { update: [], add: [], remove: [] };
  for (const value of wanted.filter((v) => !keep.some((r) => canonicalAddress(r.value) === v))) {
    const target = spare.find((r) => canonicalAddress(r.value) === value) ?? spare[0];
    if (target) {
      spare.splice(spare.indexOf(target), 1);
      edit.update.push({ id: target.id, value });
    } else {
      edit.add.push(value);
    }
  }
  edit.remove = spare.map((r) => r.id);
  return edit;
}
