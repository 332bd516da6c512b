/**
 * Who serves each line: a pure function of node declarations, liveness with since-times, the current
 * holders and the clock. The same input always gives the same answer, and a line only moves for a
 * reason it names.
 *
 * Per service × line × record type, candidates come in tiers: (1) live nodes whose ISPs include the
 * line, (2) live nodes serving `default`, (3) any live node. A node that (re)joined less than
 * `upAfter` ago is live but not settled: it keeps a line it holds, and takes one only when no settled
 * node can. The holder keeps its line while it is live and no settled node of a better tier exists;
 * otherwise the first settled node by name of the best tier takes it. No live node at all: the record
 * stays as it is and an alert is raised (never a dead node's address, never a deletion).
 */
import type { NodeDeclaration, ServiceConfig } from './config.ts';
import { LINE_OF_ISP, linesOf, recordTypesOf, LINES, type Line, type RecordType } from './lines.ts';
import { addressOf, livenessFor, type LivenessInput, type Liveness } from './nodes.ts';
import { lineKey, type LineRef } from './providers/provider.ts';

export type Reason = 'keep' | 'owner' | 'default-fallback' | 'any-fallback' | 'recovered' | 'unsettled' | 'joining' | 'no-live-node';

export interface PlannedLine {
  /** `<provider>:<lineKey>`: unique across services (config forbids two services on one record of one provider). */
  key: string;
  service: ServiceConfig;
  ref: LineRef;
}

export interface LineDecision {
  key: string;
  service: string;
  provider: string;
  ref: LineRef;
  ttl: number;
  holder: string | null;
  /** The node the line must point at; null only with reasons `joining` and `no-live-node` (the record keeps its value). */
  target: string | null;
  /** target's address of the line's type (null: leave the record as it is). */
  value: string | null;
  reason: Reason;
  detail: string;
}

export interface DecisionAlert {
  key: string;
  service: string;
  line: Line;
  recordType: RecordType;
  holder: string | null;
  message: string;
}

export interface DecisionInput {
  services: readonly ServiceConfig[];
  nodes: Record<string, NodeDeclaration>;
  liveness: LivenessInput;
  /** Current holder per PlannedLine key (nodes.ts holderOf); missing means unknown (null). */
  holders: ReadonlyMap<string, string | null>;
  now: number;
  upAfterMs: number;
  /** planLines' answer when the caller already has it. */
  plans?: readonly PlannedLine[];
}

export const planKey = (provider: string, ref: LineRef) => `${provider}:${lineKey(ref)}`;

/** The lines a service manages: its `lines`, else `default` plus every line a declared node serves; per type some node can serve. */
export function planLines(services: readonly ServiceConfig[], nodes: Record<string, NodeDeclaration>): PlannedLine[] {
  const decls = Object.values(nodes);
  const declared = new Set<Line>(['default', ...decls.flatMap((n) => linesOf(n.ISPs))]);
  const types = (['A', 'AAAA'] as const).filter((t) => decls.some((n) => recordTypesOf(n.networkType).includes(t)));
  const out: PlannedLine[] = [];
  for (const service of services) {
    const lines = service.lines ? new Set(service.lines.map((i) => LINE_OF_ISP[i])) : declared;
    for (const line of LINES.filter((l) => lines.has(l))) {
      for (const type of types) {
        const ref: LineRef = { domain: service.domain, record: service.record, line, type };
        out.push({ key: planKey(service.platformProvider, ref), service, ref });
      }
    }
  }
  return out;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

type Tier = 1 | 2 | 3;
const TIER_REASON = { 1: 'owner', 2: 'default-fallback', 3: 'any-fallback' } as const;

function tierWords(tier: Tier, line: Line): string {
  return tier === 1 ? `serves ${line}` : tier === 2 ? `serves default (no live node serves ${line})` : `is live (no live node serves ${line} or default)`;
}

/** What the per-line loop needs of a node, computed once per evaluation. */
interface NodeFacts {
  name: string;
  lines: ReadonlySet<Line>;
  servesDefault: boolean;
  address: Record<RecordType, string | undefined>;
}

/** The best candidates of one line, found in one walk over the nodes (sorted by name, so the first seen of a tier is first by name). */
interface Scan {
  /** Best tier among settled nodes, and its first node. */
  settledTier: number;
  settledFirst: string | null;
  /** Best tier among all live nodes, and its first node. */
  liveTier: number;
  liveFirst: string | null;
  /** The holder's tier if it is live (0 if not). */
  holderTier: number;
}

export function decide(input: DecisionInput): { decisions: LineDecision[]; alerts: DecisionAlert[] } {
  const decisions: LineDecision[] = [];
  const alerts: DecisionAlert[] = [];
  const nodes: NodeFacts[] = Object.keys(input.nodes)
    .sort(byName)
    .map((name) => {
      const decl = input.nodes[name];
      return { name, lines: new Set(linesOf(decl.ISPs)), servesDefault: decl.ISPs.includes('default'), address: { A: addressOf(decl, 'A'), AAAA: addressOf(decl, 'AAAA') } };
    });
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  const upAfterS = Math.round(input.upAfterMs / 1000);
  // Per service: whether each node (by index) is live, and settled (up for upAfter).
  const states = new Map<string, { live: boolean[]; settled: boolean[]; joining: boolean[] }>();

  for (const plan of input.plans ?? planLines(input.services, input.nodes)) {
    const { service, ref } = plan;
    let st = states.get(service.serviceName);
    if (!st) {
      const l: Liveness[] = nodes.map((n) => livenessFor(input.liveness, service, n.name));
      st = { live: l.map((x) => x.up), settled: l.map((x) => x.up && input.now - x.since >= input.upAfterMs), joining: l.map((x) => x.joining === true) };
      states.set(service.serviceName, st);
    }
    const holder = input.holders.get(plan.key) ?? null;
    const scan: Scan = { settledTier: Infinity, settledFirst: null, liveTier: Infinity, liveFirst: null, holderTier: 0 };
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i];
      if (!st.live[i] || n.address[ref.type] === undefined) continue;
      const tier: Tier = n.lines.has(ref.line) ? 1 : n.servesDefault ? 2 : 3;
      if (tier < scan.liveTier) {
        scan.liveTier = tier;
        scan.liveFirst = n.name;
      }
      if (st.settled[i] && tier < scan.settledTier) {
        scan.settledTier = tier;
        scan.settledFirst = n.name;
      }
      if (n.name === holder) scan.holderTier = tier;
    }

    // One object shape for every decision (a spread of a shared base made this the slowest part).
    const push = (target: string | null, reason: Reason, detail: string) =>
      decisions.push({ key: plan.key, service: service.serviceName, provider: service.platformProvider, ref, ttl: service.ttl, holder, target, value: target === null ? null : nodes[index.get(target)!].address[ref.type]!, reason, detail });
    const was = holder === null ? 'no node held the line' : `${holder} is down`;
    if (scan.holderTier > 0 && scan.holderTier <= scan.settledTier) {
      push(holder, 'keep', `${holder} is live and ${tierWords(scan.holderTier as Tier, ref.line)}`);
    } else if (scan.settledFirst !== null) {
      const t = scan.settledTier as Tier;
      const target = scan.settledFirst;
      if (scan.holderTier > 0) push(target, 'recovered', `${target} ${tierWords(t, ref.line)} and has been up for ${upAfterS} s or more; it takes the line back from ${holder}`);
      else push(target, TIER_REASON[t], `${was}; ${target} ${tierWords(t, ref.line)}`);
    } else if (scan.liveFirst !== null) {
      // Only nodes that came up less than upAfter ago: better one of them than a dead node.
      push(scan.liveFirst, 'unsettled', `${was}; ${scan.liveFirst} ${tierWords(scan.liveTier as Tier, ref.line)} but has been up for less than ${upAfterS} s, and no other node is live`);
    } else if (nodes.some((n, i) => st.joining[i] && n.address[ref.type] !== undefined)) {
      // Right after a controller start its linked nodes have not beaten upAfter times yet: not an outage.
      const joining = nodes.filter((n, i) => st.joining[i] && n.address[ref.type] !== undefined).map((n) => n.name);
      push(null, 'joining', `${was}; waiting for the first heartbeats of ${joining.join(', ')} (linked, not counted up yet)`);
    } else {
      const message = `no live node can serve ${service.serviceName} ${ref.line} ${ref.type}; the record keeps ${holder ? `pointing at ${holder}` : 'its current value'}`;
      push(null, 'no-live-node', message);
      alerts.push({ key: plan.key, service: service.serviceName, line: ref.line, recordType: ref.type, holder, message });
    }
  }
  return { decisions, alerts };
}
