import { NOT_PROBED, UP } from './schema.ts';

/** iplive's levels: how many probe nodes watch a group and how many must fail before a record is down. */
export const LEVELS: Record<number, { nodes: number; downWhen: number }> = {
  0: { nodes: 3, downWhen: 2 },
  1: { nodes: 2, downWhen: 1 },
  2: { nodes: 7, downWhen: 5 },
  // Every probe node watches; all of them must fail.
  4: { nodes: Infinity, downWhen: Infinity },
};

export const DEFAULT_LEVEL = 4;

export function isLevel(n: number): boolean {
  return Object.hasOwn(LEVELS, n);
}

/** How many nodes a level asks for, given how many probe nodes exist. */
export function nodesFor(level: number, available: number): number {
  return Math.min(LEVELS[level].nodes, available);
}

export interface NodeVote {
  node: string;
  status: number;
  resTime: number;
}

export interface Verdict {
  state: 'up' | 'down' | 'unknown';
  /** The iplive status reported for the record: 1 when up, else the most common failure code. */
  status: number;
  /** Mean res_time over the nodes that answered, ms. */
  resTime: number;
  failures: number;
  received: number;
  /** Fewer results than the level asks for (too few live nodes, or results missing). */
  degraded: boolean;
  missing: string[];
}

/**
 * Decides one record from the votes that arrived. A node that sent nothing is missing: it never
 * counts as a failure; the threshold shrinks to the number of votes received (and the verdict is
 * marked degraded), so a level never needs more failures than there are answers. A node that
 * answered it could not probe (NOT_PROBED) is not missing, but its answer is not counted either.
 */
export function decide(level: number, expected: string[], all: NodeVote[]): Verdict {
  const asked = LEVELS[level].nodes === Infinity ? expected.length : LEVELS[level].nodes;
  const got = new Set(all.map((v) => v.node));
  const votes = all.filter((v) => v.status !== NOT_PROBED);
  const missing = expected.filter((n) => !got.has(n));
  const received = votes.length;
  const resTime = received ? Math.round(votes.reduce((a, v) => a + v.resTime, 0) / received) : 0;
  const failed = votes.filter((v) => v.status !== UP);
  const degraded = received < asked;
  if (received === 0) return { state: 'unknown', status: 0, resTime: 0, failures: 0, received, degraded: true, missing };
  const threshold = Math.min(LEVELS[level].downWhen, received);
  if (failed.length < threshold) return { state: 'up', status: UP, resTime, failures: failed.length, received, degraded, missing };
  return { state: 'down', status: mostCommon(failed.map((v) => v.status)), resTime, failures: failed.length, received, degraded, missing };
}

function mostCommon(codes: number[]): number {
  const counts = new Map<number, number>();
  for (const c of codes) counts.set(c, (counts.get(c) ?? 0) + 1);
  let best = codes[0];
  for (const [c, n] of counts) if (n > counts.get(best)! || (n === counts.get(best)! && c < best)) best = c;
  return best;
}

/**
 * Picks the probe nodes for a group by rendezvous hashing, so a group keeps its nodes while they
 * live, load spreads across nodes, and a node that goes down is replaced by the next in rank.
 */
export function pickNodes(groupKey: string, level: number, live: string[]): string[] {
  const n = nodesFor(level, live.length);
  return [...live]
    .map((id) => ({ id, w: hash32(`${groupKey}\u0000${id}`) }))
    .sort((a, b) => b.w - a.w || (a.id < b.id ? -1 : 1))
    .slice(0, n)
    .map((x) => x.id);
}

/** FNV-1a: cheap and stable across processes. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
