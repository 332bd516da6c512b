/**
 * What every DurableLog implementation (file-log.ts, the PostgreSQL one) does the same way: check and
 * encode records before they are written, decide when to compact, and take the owner's snapshot.
 */
import type { ZodType } from 'zod';
import { parseRecordJson } from './record-json.ts';

/** A schema's complaint about a value, on one line. */
export function schemaProblem(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>, what = 'record'): string {
  return issues.map((i) => `${i.path.map(String).join('.') || `(${what})`}: ${i.message}`).join('; ');
}

/**
 * Records as the JSON lines a log stores. A record that could not be read back would be skipped at the
 * next open: it is refused now instead (throws naming the log and the field).
 */
export function encodeRecords<R>(log: string, schema: ZodType<R>, records: R[]): string[] {
  const lines: string[] = [];
  for (const r of records) {
    const check = schema.safeParse(r);
    if (!check.success) throw new Error(`log ${log}: record does not match its schema: ${schemaProblem(check.error.issues)}`);
    lines.push(JSON.stringify(r));
  }
  return lines;
}

/**
 * One stored record read back: the record as written (not the schema's output, so its data stays as it
 * was), or why it cannot be loaded (torn, or written by a version whose schema differs). Callers skip
 * and count the latter instead of refusing to open.
 */
export function decodeRecord<R>(schema: ZodType<R>, text: string): { ok: true; record: R } | { ok: false; why: string } {
  let rec: unknown;
  try {
    rec = parseRecordJson(text);
  } catch (err) {
    return { ok: false, why: (err as Error).message };
  }
  const check = schema.safeParse(rec);
  if (!check.success) return { ok: false, why: check.error.issues[0]?.message ?? 'does not match the schema' };
  return { ok: true, record: rec as R };
}

/** encodeRecords for an append, refused first if the log was opened read-only or is closed. */
export function appendLines<R>(log: string, schema: ZodType<R>, records: R[], state: { readOnly?: boolean; closed: boolean }): string[] {
  if (state.readOnly) throw new Error(`log ${log} was opened read-only`);
  if (state.closed) throw new Error(`log ${log} is closed`);
  return encodeRecords(log, schema, records);
}

/** When a log compacts: asked for by compact(), or once its journal has grown enough. */
export class CompactionTrigger {
  /** compact() asked for one with the next write. */
  requested = false;
  /** After a failed compaction, the next is tried only once the journal has grown this far. */
  private retryAt = 0;
  /** Why the compaction compact() asked for failed, for compact() to throw. */
  private failure: Error | undefined;

  constructor(
    /** Appended bytes past which the log compacts. */
    readonly after: number,
  ) {}

  /**
   * At the start of a batch's write: whether a snapshot goes with it (and whether compact() asked for
   * it). Never before the journal outgrows the snapshot, so that compaction costs O(1) per appended byte.
   */
  take(journalBytes: number, snapshotBytes: number, lines: string[]): { requested: boolean } | undefined {
    const requested = this.requested;
    let grown = journalBytes;
    for (const l of lines) grown += l.length + 1;
    if (!requested && !(grown > this.after && grown > snapshotBytes && grown > this.retryAt)) return undefined;
    this.requested = false;
    return { requested };
  }

  /** compact(): one goes with the next write. */
  ask(): void {
    this.requested = true;
    this.failure = undefined;
  }

  /** compact(), once the compaction it asked for is done: throws why it failed. */
  settle(): void {
    const failure = this.failure;
    this.failure = undefined;
    if (failure) throw failure;
  }

  succeeded(): void {
    this.retryAt = 0;
  }

  failed(journalBytes: number, err: Error, requested: boolean): void {
    this.retryAt = journalBytes + this.after;
    if (requested) this.failure = err;
  }
}

/** The owner's state as snapshot lines, built synchronously: one instant, covering every append so far. */
export function snapshotLines<R>(snapshot: () => Iterable<R>): string[] {
  const lines: string[] = [];
  for (const r of snapshot()) lines.push(JSON.stringify(r));
  return lines;
}
