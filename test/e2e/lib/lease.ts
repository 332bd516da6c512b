/**
 * The singleton lease as the controllers' status shows it, for e2e tests with several controllers.
 *
 *   const { c, s } = await holder([a, b, c], 'one holder'); s.lease.epoch; await status(b);
 */
import { until, type TestController } from '../../helpers/cluster.ts';

/** /api/v1/status of a controller, or undefined when it does not answer within a second (killed, stopped). */
export async function status(c: TestController): Promise<any | undefined> {
  try {
    const r = await fetch(`${c.url}/api/v1/status`, { headers: { authorization: `Bearer ${c.adminToken}` }, signal: AbortSignal.timeout(1000) });
    return r.status === 200 ? await r.json() : undefined;
  } catch {
    return undefined;
  }
}

/** /api/v1/status of a controller, waiting as long as the request takes (for tests that need the answer). */
export async function statusOf(c: TestController): Promise<any> {
  return (await c.api('GET', '/api/v1/status')).body;
}

/** The controller holding the lease among cs, with its status, once exactly one of them says it holds it. */
export async function holder(cs: TestController[], what: string, timeoutMs = 15_000): Promise<{ c: TestController; s: any }> {
  return until(what, async () => {
    const all = await Promise.all(cs.map(async (c) => ({ c, s: await status(c) })));
    const held = all.filter((x) => x.s?.lease?.held);
    return held.length === 1 ? held[0] : undefined;
  }, timeoutMs, 100);
}
