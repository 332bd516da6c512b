/**
 * Failover timing for dns-sync: kill a node, then poll DNS until the lines it held answer a survivor.
 * The caller decides what a kill is. Today the bench passes a liveness change followed by one
 * evaluation (the decision → write → DNS part). When the plugin is wired into the controller and
 * agents, the same function takes a kill that SIGKILLs an agent process and an evaluation left to the
 * watchdog, which gives the full "SIGKILL → dig answers the survivor" figure (issue 13: p99 ≤ 10 s).
 */
import { performance } from 'node:perf_hooks';

export interface FailoverRound {
  /** Makes node i die (and, in the partial measurement, runs the evaluation that reacts to it). */
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
