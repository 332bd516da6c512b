import { NOT_PROBED, UP, type CheckResult, type CheckSpec, type RecordSpec } from '../schema.ts';
import { httpAttempt, type AttemptOutcome } from './http.ts';
import { tcpAttempt } from './tcp.ts';
import { icmpAttempt } from './icmp.ts';

export function attempt(spec: CheckSpec, ip: string): Promise<AttemptOutcome> {
  switch (spec.protocol) {
    case 'http':
    case 'https':
      return httpAttempt(spec, ip);
    case 'tcp':
      return tcpAttempt(spec, ip);
    case 'icmp':
      return icmpAttempt(spec, ip);
  }
}

/**
 * Runs one record's check: up to retry_count retries, inside the round (a retry that could not
 * finish before `deadline` is not started), the last attempt's outcome is the result.
 */
export async function runCheck(spec: CheckSpec, rec: RecordSpec, due: number, deadline: number): Promise<CheckResult> {
  const started = Date.now();
  let out: AttemptOutcome;
  let attempts = 0;
  for (;;) {
    attempts++;
    out = await attempt(spec, rec.ip);
    if (out.status === UP || out.status === NOT_PROBED || attempts > spec.retryCount) break;
    if (Date.now() + spec.timeout * 1000 > deadline) break;
  }
  const r: CheckResult = { g: spec.key, r: rec.id, status: out.status, resTime: Math.round(out.timing.total), attempts, timing: out.timing, due, started };
  if (out.error) r.error = out.error;
  if (out.certExpires) r.certExpires = out.certExpires;
  return r;
}

/** The result of a check this node cannot run (e.g. icmp without ping): answered at once, never waited for. */
export function notProbed(spec: CheckSpec, rec: RecordSpec, due: number, error: string): CheckResult {
  return { g: spec.key, r: rec.id, status: NOT_PROBED, resTime: 0, attempts: 0, error, due, started: Date.now() };
}
