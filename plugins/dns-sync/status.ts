/**
 * Per service × line × type: where it points, why, its last switch and its pending retry: the rows
 * the status page and the dashboard panel show. Built from the latest decisions and what the
 * controller keeps of switches and retries; provider errors are already scrubbed of secrets.
 */
import type { LineDecision } from './decision.ts';
import { fqdn, type Line, type RecordType } from './lines.ts';
import type { RetryItem, SwitchedEvent } from './writer.ts';

export interface LineStatus {
  key: string;
  service: string;
  provider: string;
  /** Where the line is published, e.g. telecom.www.example.test (a provider without ISP lines) or www.example.test. */
  name: string;
  line: Line;
  recordType: RecordType;
  /** The node the line points at (the decision's target, or the holder it keeps when no node is live). */
  node: string | null;
  address: string | null;
  reason: string;
  alert: boolean;
  lastSwitch: (SwitchedEvent & { at: number }) | null;
  pending: (RetryItem & { dueAt: number }) | null;
}

/** `nameOf`: where the provider publishes the line (default: the record's own name). */
export function lineStatusRows(
  decisions: readonly LineDecision[],
  lastSwitch: ReadonlyMap<string, SwitchedEvent & { at: number }>,
  pending: ReadonlyMap<string, RetryItem & { dueAt: number }>,
  nameOf: (d: LineDecision) => string = (d) => fqdn(d.ref.record, d.ref.domain),
): LineStatus[] {
  return decisions.map((d) => ({
    key: d.key,
    service: d.service,
    provider: d.provider,
    name: nameOf(d),
    line: d.ref.line,
    recordType: d.ref.type,
    node: d.target ?? d.holder,
    address: d.value,
    reason: d.detail,
    alert: d.reason === 'no-live-node',
    lastSwitch: lastSwitch.get(d.key) ?? null,
    pending: pending.get(d.key) ?? null,
  }));
}
