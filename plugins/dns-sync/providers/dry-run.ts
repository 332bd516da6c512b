/**
 * The embedded default: writes nothing anywhere, remembers what it would have written (in memory) so
 * reads answer it back, and lists it for the status page and the dashboard.
 */
import { lineRecordName } from '../lines.ts';
import type { ProviderConfig } from '../config.ts';
import { lineKey, type DnsProvider, type LineRead, type LineRef, type LineWrite, type WriteOutcome } from './provider.ts';

type DryRunConfig = Extract<ProviderConfig, { type: 'dry-run' }>;

export interface DryRunRecord {
  /** The name the line would live at on a provider without ISP lines. */
  name: string;
  ref: LineRef;
  values: string[];
  ttl: number;
  writtenAt: number;
  /** How many times this line would have been written. */
  writes: number;
}

export class DryRunProvider implements DnsProvider {
  readonly type = 'dry-run' as const;
  readonly nativeLines = false;
  private readonly lines = new Map<string, DryRunRecord>();

  /** `records`: what it would have written before (kept by the controller across restarts). */
  constructor(
    readonly name: string,
    private readonly cfg: DryRunConfig,
    private readonly now: () => number = Date.now,
    records: readonly DryRunRecord[] = [],
  ) {
    for (const r of records) this.lines.set(lineKey(r.ref), { ...r, ref: { ...r.ref }, values: [...r.values] });
  }

  async read(refs: LineRef[]): Promise<Map<string, LineRead>> {
    return new Map(refs.map((ref) => {
      const rec = this.lines.get(lineKey(ref));
      return [lineKey(ref), rec ? { ok: true, values: [...rec.values], ttl: rec.ttl } : { ok: true, values: [] }];
    }));
  }

  async write(writes: LineWrite[]): Promise<WriteOutcome[]> {
    for (const w of writes) {
      const key = lineKey(w.ref);
      const before = this.lines.get(key);
      const name = lineRecordName(this.cfg.lineName, w.ref.line, w.ref.record, w.ref.domain);
      this.lines.set(key, { name, ref: { ...w.ref }, values: [...w.values], ttl: w.ttl, writtenAt: this.now(), writes: (before?.writes ?? 0) + 1 });
    }
    return writes.map(() => ({ ok: true }));
  }

  /** What it would have written, by name, line and type. */
  records(): DryRunRecord[] {
    return [...this.lines.values()].sort((a, b) => (a.name + a.ref.type).localeCompare(b.name + b.ref.type));
  }
}
