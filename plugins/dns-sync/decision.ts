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

export type Reason = 'keep' | 'owner' | 'default-fallback' | 'any-fallback' | 'recovered' | 'unsettled' | 'no-live-node';

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
  /** The node the line must point at; null only with reason `no-live-node`. */
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

function tierOf(node: NodeDeclaration, line: Line): 1 | 2 | 3 {
  if (node.ISPs.some((i) => LINE_OF_ISP[i] === line)) return 1;
  if (node.ISPs.includes('default')) return 2;
  return 3;
}

const TIER_REASON = { 1: 'owner', 2: 'default-fallback', 3: 'any-fallback' } as const;

function tierWords(tier: 1 | 2 | 3, line: Line): string {
  return tier === 1 ? `serves ${line}` : tier === 2 ? `serves default (no live node serves ${line})` : `is live (no live node serves ${line} or default)`;
}

export function decide(input: DecisionInput): { decisions: LineDecision[]; alerts: DecisionAlert[] } {
  const decisions: LineDecision[] = [];
  const alerts: DecisionAlert[] = [];
  const names = Object.keys(input.nodes).sort(byName);
  const upAfterS = Math.round(input.upAfterMs / 1000);
  const liveCache = new Map<string, Map<string, Liveness>>();

  for (const plan of input.plans ?? planLines(input.services, input.nodes)) {
    const { service, ref } = plan;
    let live = liveCache.get(service.serviceName);
    if (!live) {
      live = new Map(names.map((n) => [n, livenessFor(input.liveness, service, n)]));
      liveCache.set(service.serviceName, live);
    }
    const holder = input.holders.get(plan.key) ?? null;
    const eligible = names.filter((n) => addressOf(input.nodes[n], ref.type) !== undefined && live.get(n)!.up);
    const settled = eligible.filter((n) => input.now - live.get(n)!.since >= input.upAfterMs);
    const tier = (n: string) => tierOf(input.nodes[n], ref.line);
    const bestSettled = settled.length ? Math.min(...settled.map(tier)) : Infinity;
    const holderLive = holder !== null && eligible.includes(holder);

    const base = { key: plan.key, service: service.serviceName, provider: service.platformProvider, ref, ttl: service.ttl, holder };
    const choose = (target: string, reason: Reason, detail: string) =>
      decisions.push({ ...base, target, value: addressOf(input.nodes[target], ref.type)!, reason, detail });

    if (holderLive && tier(holder) <= bestSettled) {
      choose(holder, 'keep', `${holder} is live and ${tierWords(tier(holder), ref.line)}`);
    } else if (settled.length) {
      const t = bestSettled as 1 | 2 | 3;
      const target = settled.filter((n) => tier(n) === t).sort(byName)[0];
      if (holderLive) choose(target, 'recovered', `${target} ${tierWords(t, ref.line)} and has been up for ${upAfterS} s or more; it takes the line back from ${holder}`);
      else choose(target, TIER_REASON[t], `${holder === null ? 'no node held the line' : `${holder} is down`}; ${target} ${tierWords(t, ref.line)}`);
    } else if (eligible.length) {
      // Only nodes that came up less than upAfter ago: better one of them than a dead node.
      const t = Math.min(...eligible.map(tier)) as 1 | 2 | 3;
      const target = eligible.filter((n) => tier(n) === t).sort(byName)[0];
      choose(target, 'unsettled', `${holder === null ? 'no node held the line' : `${holder} is down`}; ${target} ${tierWords(t, ref.line)} but has been up for less than ${upAfterS} s, and no other node is live`);
    } else {
      const message = `no live node can serve ${service.serviceName} ${ref.line} ${ref.type}; the record keeps ${holder ? `pointing at ${holder}` : 'its current value'}`;
      decisions.push({ ...base, target: null, value: null, reason: 'no-live-node', detail: message });
      alerts.push({ key: plan.key, service: service.serviceName, line: ref.line, recordType: ref.type, holder, message });
    }
  }
  return { decisions, alerts };
}
