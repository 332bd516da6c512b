import ping from 'ping';
import { CONN_ERROR, TIMEOUT, UP, type CheckSpec } from '../schema.ts';
import type { AttemptOutcome } from './http.ts';
import { isValidTarget } from './target.ts';

const UNREACHABLE = /unknown host|not known|unreachable|failure in name resolution|no address/i;

/** One echo through the system ping (the `ping` package passes arguments without a shell). */
export async function icmpAttempt(spec: CheckSpec, ip: string): Promise<AttemptOutcome> {
  // The API refuses bad targets already; this guards assignments that came from anywhere else.
  if (!isValidTarget(ip)) return { status: CONN_ERROR, error: 'invalid target', timing: { dns: 0, connect: 0, tls: 0, ttfb: 0, total: 0 } };
  const t0 = performance.now();
  const res = await ping.promise.probe(ip, { timeout: Math.max(1, Math.round(spec.timeout)), min_reply: 1 });
  const total = Math.round((performance.now() - t0) * 10) / 10;
  const rtt = typeof res.time === 'number' ? res.time : Number(res.time);
  if (res.alive) return { status: UP, timing: { dns: 0, connect: 0, tls: 0, ttfb: 0, total: Number.isFinite(rtt) ? rtt : total } };
  const unreachable = UNREACHABLE.test(res.output ?? '');
  return { status: unreachable ? CONN_ERROR : TIMEOUT, error: unreachable ? 'unreachable' : `no reply within ${spec.timeout}s`, timing: { dns: 0, connect: 0, tls: 0, ttfb: 0, total } };
}
