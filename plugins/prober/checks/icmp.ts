import ping from 'ping';
import { CONN_ERROR, NOT_PROBED, TIMEOUT, UP, type CheckSpec } from '../schema.ts';
import type { AttemptOutcome } from './http.ts';
import { isValidTarget } from './target.ts';

const UNREACHABLE = /unknown host|not known|unreachable|failure in name resolution|no address/i;
/** ping ran but may not open an ICMP socket (no CAP_NET_RAW, net.ipv4.ping_group_range): not the target's fault. */
const NOT_PERMITTED = /operation not permitted|permission denied/i;
const noTiming = () => ({ dns: 0, connect: 0, tls: 0, ttfb: 0, total: 0 });

/** One echo through the system ping (the `ping` package passes arguments without a shell). */
export async function icmpAttempt(spec: CheckSpec, ip: string): Promise<AttemptOutcome> {
  // The API refuses bad targets already; this guards assignments that came from anywhere else.
  if (!isValidTarget(ip)) return { status: CONN_ERROR, error: 'invalid target', timing: noTiming() };
  const t0 = performance.now();
  let res: ping.PingResponse;
  try {
    res = await ping.promise.probe(ip, { timeout: Math.max(1, Math.round(spec.timeout)), min_reply: 1 });
  } catch (err) {
    // The agent checks for ping at start (capabilities); this is ping vanishing or failing to spawn later.
    return { status: NOT_PROBED, error: `ping could not be run: ${(err as Error).message}`, timing: noTiming() };
  }
  if (!res.alive && NOT_PERMITTED.test(res.output ?? '')) return { status: NOT_PROBED, error: `ping is not permitted to send ICMP here: ${String(res.output).trim().slice(0, 160)}`, timing: noTiming() };
  const total = Math.round((performance.now() - t0) * 10) / 10;
  const rtt = typeof res.time === 'number' ? res.time : Number(res.time);
  if (res.alive) return { status: UP, timing: { dns: 0, connect: 0, tls: 0, ttfb: 0, total: Number.isFinite(rtt) ? rtt : total } };
  const unreachable = UNREACHABLE.test(res.output ?? '');
  return { status: unreachable ? CONN_ERROR : TIMEOUT, error: unreachable ? 'unreachable' : `no reply within ${spec.timeout}s`, timing: { dns: 0, connect: 0, tls: 0, ttfb: 0, total } };
}
