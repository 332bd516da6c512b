/**
 * goim's push API called as an application would: `POST /goim/push/keys?operation=1000&keys=K` with
 * goim's benchmark body (stamped with its send time for the clients' latency samples), at a fixed
 * rate over a pool of keep-alive connections. Counts answers and times them.
 */
import { Agent, request } from 'node:http';
import { benchBody, startPushing } from './comet-bench-ipc.ts';

export interface PushRun {
  sent: number;
  ok: number;
  failed: number;
  errors: string[];
  /** HTTP answer times, ms. */
  answerMs: number[];
}

export async function pushKeysAt(base: string, token: string | undefined, rate: number, seconds: number, keyFor: (i: number) => string): Promise<PushRun> {
  const url = new URL(base);
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const run: PushRun = { sent: 0, ok: 0, failed: 0, errors: [], answerMs: [] };
  let inFlight = 0;
  const fail = (why: string) => {
    run.failed++;
    if (run.errors.length < 5) run.errors.push(why);
  };
  const one = () => {
    const i = run.sent++;
    inFlight++;
    const body = benchBody();
    const t0 = performance.now();
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: `/goim/push/keys?operation=1000&keys=${encodeURIComponent(keyFor(i))}`,
        headers: { 'content-length': body.length, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d));
        res.on('end', () => {
          inFlight--;
          run.answerMs.push(performance.now() - t0);
          if (res.statusCode === 200 && text.includes('"code":0')) run.ok++;
          else fail(`HTTP ${res.statusCode} ${text.slice(0, 80)}`);
        });
      },
    );
    req.on('error', (err) => {
      inFlight--;
      fail(err.message);
    });
    req.end(body);
  };
  const stop = startPushing(rate, one);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop();
  const end = Date.now() + 10_000;
  while (inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  agent.destroy();
  return run;
}
