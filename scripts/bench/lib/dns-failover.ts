/**
 * Failover timing for dns-sync: kill a node, then poll DNS until the lines it held answer a survivor.
 * The caller decides what a kill is; the benchmark SIGKILLs an agent process and leaves the rest to
 * the controller's watchdog and dns-sync (lib/dns-cluster.ts), which gives the whole "SIGKILL → dig
 * answers a survivor" time (issue 13: p99 ≤ 10 s).
 */
import { performance } from 'node:perf_hooks';

export interface FailoverRound {
  /** Makes node i die. */
  kill(i: number): Promise<void>;
  /** Brings node i back and waits until its lines are home again, so rounds do not overlap. */
  revive(i: number): Promise<void>;
  /** A name and type the node held, and the answers that mean "moved to a survivor". */
  watch(i: number): { name: string; type: string; survivors: string[] };
  /** DNS answers for a name (dig). */
  dig(name: string, type: string): Promise<string[]>;
}

export interface FailoverResult {
  node: number;
  ms: number;
}

/** Runs `kills` rounds, each on the node `pick` names; a round's time runs from the kill to the first survivor answer. */
export async function measureFailover(round: FailoverRound, pick: (k: number) => number, kills: number, timeoutMs = 60_000, pollMs = 10): Promise<FailoverResult[]> {
  const out: FailoverResult[] = [];
  for (let k = 0; k < kills; k++) {
    const node = pick(k);
    const { name, type, survivors } = round.watch(node);
    const t0 = performance.now();
    await round.kill(node);
    for (;;) {
      const answer = await round.dig(name, type);
      if (answer.length > 0 && answer.every((a) => survivors.includes(a))) break;
      if (performance.now() - t0 > timeoutMs) throw new Error(`${name} ${type} still answers ${answer.join(',') || 'nothing'} ${timeoutMs} ms after node ${node} died`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
    out.push({ node, ms: performance.now() - t0 });
    await round.revive(node);
  }
  return out;
}
