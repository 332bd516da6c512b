/**
 * Which node runs a due task: among live nodes running jobs that carry every label of the selector and
 * have a free slot, the one with the fewest callbacks in flight; ties go to the node that least recently
 * got one, so a burst spreads evenly. Undefined: no node can take it now and the task waits.
 */
export interface Candidate {
  id: string;
  live: boolean;
  /** The node runs the jobs plugin. */
  runsJobs: boolean;
  labels: Record<string, string>;
  inFlight: number;
  /** When it was last given a task (ms); 0 if never. */
  lastDispatchAt: number;
}

export interface DispatchPolicy {
  labels: Record<string, string>;
  concurrencyPerNode: number;
}

export function eligible(n: Candidate, policy: DispatchPolicy): boolean {
  return n.live && n.runsJobs && Object.entries(policy.labels).every(([k, v]) => n.labels[k] === v);
}

export function pickNode(nodes: Iterable<Candidate>, policy: DispatchPolicy): Candidate | undefined {
  let best: Candidate | undefined;
  for (const n of nodes) {
    if (!eligible(n, policy) || n.inFlight >= policy.concurrencyPerNode) continue;
    if (!best || n.inFlight < best.inFlight || (n.inFlight === best.inFlight && (n.lastDispatchAt < best.lastDispatchAt || (n.lastDispatchAt === best.lastDispatchAt && n.id < best.id)))) best = n;
  }
  return best;
}

/** Why nothing was picked, for task detail and the dashboard ("waiting: …"). */
export function whyWaiting(nodes: Iterable<Candidate>, policy: DispatchPolicy): string {
  const all = [...nodes];
  const selector = Object.entries(policy.labels).map(([k, v]) => `${k}=${v}`).join(',');
  const fitting = all.filter((n) => eligible(n, policy));
  if (fitting.length === 0) {
    const running = all.filter((n) => n.runsJobs);
    if (running.length === 0) return 'no node runs the jobs plugin';
    if (!running.some((n) => n.live)) return 'no live node runs the jobs plugin';
    return `no live node running jobs has the labels ${selector}`;
  }
  return `all ${fitting.length} eligible node${fitting.length > 1 ? 's are' : ' is'} at ${policy.concurrencyPerNode} callbacks in flight`;
}
