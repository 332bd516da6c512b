/**
 * One evaluation: read every managed line from its provider, find each line's holder, decide, write
 * what differs, read it back. The controller runs it on a node's up/down, on a probe change, every
 * `reconcileInterval` (repairs hand-made drift) and for due retries (`only`).
 */
import { performance } from 'node:perf_hooks';
import type { BackoffConfig } from '../sdk/backoff.ts';
import type { NodeDeclaration, ServiceConfig } from './config.ts';
import { decide, planLines, type DecisionAlert, type LineDecision } from './decision.ts';
import { holderOf, type LivenessInput } from './nodes.ts';
import { groupBy, lineKey, type DnsProvider, type LineRead } from './providers/provider.ts';
import { writeLines, type DesiredLine, type RetryItem, type SwitchedEvent } from './writer.ts';

export interface PassInput {
  services: readonly ServiceConfig[];
  nodes: Record<string, NodeDeclaration>;
  providers: ReadonlyMap<string, DnsProvider>;
  liveness: LivenessInput;
  now: number;
  upAfterMs: number;
  backoff: BackoffConfig;
  /** Act on these decision keys only (due retries); every line is still decided. */
  only?: ReadonlySet<string>;
  /** Failed attempts so far per decision key, carried by the retry queue. */
  attempts?: ReadonlyMap<string, number>;
}

export interface PassResult {
  decisions: LineDecision[];
  alerts: DecisionAlert[];
  switched: SwitchedEvent[];
  repaired: DesiredLine[];
  failures: RetryItem[];
  unchanged: number;
  /** Lines handed to providers' writes. */
  written: number;
  /** Lines handed to each provider's write, and failed lines (read, write or read-back), per provider. */
  byProvider: Map<string, { written: number; failed: number }>;
  timing: { readMs: number; decideMs: number; writeMs: number };
}

export async function runPass(input: PassInput): Promise<PassResult> {
  const all = planLines(input.services, input.nodes);
  const acted = input.only ? all.filter((p) => input.only!.has(p.key)) : all;

  const t0 = performance.now();
  const reads = new Map<string, ReadonlyMap<string, LineRead>>();
  const byProvider = groupBy(acted, (p) => p.service.platformProvider);
  await Promise.all(
    [...byProvider].map(async ([name, plans]) => {
      const provider = input.providers.get(name);
      if (provider) reads.set(name, await provider.read(plans.map((p) => p.ref)));
    }),
  );
  const t1 = performance.now();

  const holders = new Map<string, string | null>();
  for (const p of acted) {
    const r = reads.get(p.service.platformProvider)?.get(lineKey(p.ref));
    if (r?.ok) holders.set(p.key, holderOf(r.values, p.ref.type, input.nodes));
  }
  const { decisions, alerts } = decide({ services: input.services, nodes: input.nodes, liveness: input.liveness, holders, now: input.now, upAfterMs: input.upAfterMs, plans: all });
  const t2 = performance.now();

  const result: PassResult = { decisions, alerts, switched: [], repaired: [], failures: [], unchanged: 0, written: 0, byProvider: new Map(), timing: { readMs: t1 - t0, decideMs: t2 - t1, writeMs: 0 } };
  const actedKeys = new Set(acted.map((p) => p.key));
  const wanted = decisions.filter((d) => d.value !== null && actedKeys.has(d.key));
  await Promise.all(
    [...groupBy(wanted, (d) => d.provider)].map(async ([name, list]) => {
      const provider = input.providers.get(name);
      const current = reads.get(name);
      if (!provider || !current) {
        result.byProvider.set(name, { written: 0, failed: list.length });
        for (const d of list) result.failures.push({ key: d.key, service: d.service, provider: name, line: d.ref.line, recordType: d.ref.type, attempt: (input.attempts?.get(d.key) ?? 0) + 1, error: `provider "${name}" is not configured`, retryInMs: input.backoff.maxDelay * 1000 });
        return;
      }
      const desired = list.map((d): DesiredLine => {
        const r = current.get(lineKey(d.ref));
        const from = d.holder ?? (r?.ok && r.values.length ? r.values.join(',') : null);
        return { key: d.key, service: d.service, ref: d.ref, values: [d.value!], ttl: d.ttl, from, to: d.target!, reason: d.detail, attempt: input.attempts?.get(d.key) ?? 0 };
      });
      const rep = await writeLines(provider, desired, current, input.backoff);
      result.switched.push(...rep.switched);
      result.repaired.push(...rep.repaired);
      result.failures.push(...rep.failures);
      result.unchanged += rep.unchanged;
      result.written += rep.written;
      result.byProvider.set(name, { written: rep.written, failed: rep.failures.length });
    }),
  );
  result.timing.writeMs = performance.now() - t2;
  return result;
}
