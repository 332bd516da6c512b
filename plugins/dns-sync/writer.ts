/**
 * Provider-agnostic line writer: compare what a line holds with what it must hold, write only the
 * lines that differ, read them back. A line whose read, write or read-back fails comes back as a retry
 * item (attempt count, error, delay) for the durable queue; it is never dropped.
 */
import { backoffDelayMs, type BackoffConfig } from '../sdk/backoff.ts';
import type { Line, RecordType } from './lines.ts';
import { lineKey, sameValues, type DnsProvider, type LineRead, type LineRef, type LineWrite } from './providers/provider.ts';

export interface DesiredLine {
  /** Decision key (`<provider>:<line key>`), also the retry item's key. */
  key: string;
  service: string;
  ref: LineRef;
  values: string[];
  ttl: number;
  /** Who the line points at now: a node name, the raw value(s) when no node holds them, or null when empty. */
  from: string | null;
  /** The node the line must point at. */
  to: string;
  reason: string;
  /** Failed attempts so far (0 on a first try). */
  attempt: number;
}

/** `dns-sync.switched`: a line now answers another node. */
export interface SwitchedEvent {
  service: string;
  line: Line;
  recordType: RecordType;
  from: string | null;
  to: string;
  reason: string;
}

export interface RetryItem {
  key: string;
  service: string;
  provider: string;
  line: Line;
  recordType: RecordType;
  /** Failed attempts including this one. */
  attempt: number;
  error: string;
  retryInMs: number;
}

export interface WriteReport {
  switched: SwitchedEvent[];
  /** Written although the node stayed the same (drift repaired: values or TTL changed by hand). */
  repaired: DesiredLine[];
  failures: RetryItem[];
  unchanged: number;
  /** Lines handed to the provider's write. */
  written: number;
}

export function lineMatches(read: Extract<LineRead, { ok: true }>, want: { values: string[]; ttl: number }): boolean {
  if (!sameValues(read.values, want.values)) return false;
  return read.ttl === undefined || read.ttl === want.ttl;
}

const describe = (values: readonly string[]) => (values.length ? values.join(', ') : 'nothing');

/**
 * Writes the lines of `desired` whose `current` read differs, then reads them back.
 * `current` comes from the same provider's read (the caller read it to find the holders).
 */
export async function writeLines(provider: DnsProvider, desired: readonly DesiredLine[], current: ReadonlyMap<string, LineRead>, backoff: BackoffConfig, random = Math.random): Promise<WriteReport> {
  const report: WriteReport = { switched: [], repaired: [], failures: [], unchanged: 0, written: 0 };
  const fail = (d: DesiredLine, error: string) =>
    report.failures.push({ key: d.key, service: d.service, provider: provider.name, line: d.ref.line, recordType: d.ref.type, attempt: d.attempt + 1, error, retryInMs: backoffDelayMs(d.attempt, backoff, random) });

  const todo: DesiredLine[] = [];
  for (const d of desired) {
    const cur = current.get(lineKey(d.ref));
    if (!cur) fail(d, `provider "${provider.name}" (${provider.type}): the line was not read`);
    else if (!cur.ok) fail(d, cur.error);
    else if (lineMatches(cur, d)) report.unchanged++;
    else todo.push(d);
  }
  if (todo.length === 0) return report;

  const writes: LineWrite[] = todo.map((d) => ({ ref: d.ref, values: d.values, ttl: d.ttl }));
  report.written = writes.length;
  const outcomes = await provider.write(writes);
  const written = todo.filter((d, i) => {
    const o = outcomes[i];
    if (!o.ok) fail(d, o.error);
    return o.ok;
  });
  if (written.length === 0) return report;

  const back = await provider.read(written.map((d) => d.ref));
  for (const d of written) {
    const r = back.get(lineKey(d.ref));
    if (!r || !r.ok) {
      fail(d, `read-back failed: ${r && !r.ok ? r.error : 'no answer for the line'}`);
    } else if (!lineMatches(r, d)) {
      fail(d, `provider "${provider.name}" (${provider.type}): read-back of ${d.ref.record} ${d.ref.line} ${d.ref.type} shows ${describe(r.values)} (ttl ${r.ttl ?? '?'}), wanted ${describe(d.values)} (ttl ${d.ttl})`);
    } else if (d.from === d.to) {
      report.repaired.push(d);
    } else {
      report.switched.push({ service: d.service, line: d.ref.line, recordType: d.ref.type, from: d.from, to: d.to, reason: d.reason });
    }
  }
  return report;
}

/** Read, compare, write only what differs, read back: the writer on its own (tests, tools). */
export async function syncLines(provider: DnsProvider, desired: readonly DesiredLine[], backoff: BackoffConfig, random = Math.random): Promise<WriteReport> {
  const current = await provider.read(desired.map((d) => d.ref));
  return writeLines(provider, desired, current, backoff, random);
}
