import { z } from 'zod';
import { openLog, type DurableLog } from '../../plugins/sdk/durable/log.ts';
import type { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import { importLegacyJson } from '../../plugins/sdk/durable/legacy-json.ts';
import { parseRecordJson } from '../../plugins/sdk/durable/record-json.ts';
import type { Log } from '../../plugins/sdk/log.ts';

/**
 * The outbox's persistence, on the SDK's durable log (`webhook-outbox.*.jsonl`). Why a log and not a
 * whole-file store: with thousands of deliveries pending, rewriting every record on each state change
 * made each delivery cost a multi-megabyte JSON.stringify; a record costs a few hundred bytes.
 *
 * Records: put = the whole delivery, set = some fields (null removes one), del = forget it, meta =
 * the last delivery number and the event fan-out's cursor (written with the deliveries an event
 * produced, so "fanned out" and "queued" are one write).
 */
export type OutboxOp<R> = { op: 'put'; d: R } | { op: 'set'; id: string; f: Record<string, unknown> } | { op: 'del'; id: string } | { op: 'meta'; n: number; cursor: number };

export interface OutboxData<R> {
  /** Last delivery number handed out (lane order). */
  n: number;
  /** Seq of the last event whose deliveries are in the outbox (see webhooks/fanout.ts). */
  cursor: number;
  deliveries: Map<string, R>;
}

const DeliveryRecord = z.looseObject({ id: z.string().min(1), key: z.string(), n: z.number(), url: z.string(), body: z.string(), event: z.string(), state: z.enum(['pending', 'delivered', 'dead']), attempts: z.number(), createdAt: z.number(), nextAt: z.number() });
const OutboxRecord = z.discriminatedUnion('op', [
  z.object({ op: z.literal('put'), d: DeliveryRecord }),
  z.object({ op: z.literal('set'), id: z.string(), f: z.record(z.string(), z.unknown()) }),
  z.object({ op: z.literal('del'), id: z.string() }),
  z.object({ op: z.literal('meta'), n: z.number(), cursor: z.number() }),
]);

export interface OutboxLog<R> {
  data: OutboxData<R>;
  /** Records changes already made to `data`; resolves once they are written. */
  write(ops: OutboxOp<R>[]): Promise<void>;
  close(): Promise<void>;
}

export async function openOutboxLog<R extends { id: string; n: number }>(dataDir: string, opts: { log: Log; health?: StorageHealth }): Promise<OutboxLog<R>> {
  const data: OutboxData<R> = { n: 0, cursor: 0, deliveries: new Map() };
  const apply = (op: OutboxOp<R>) => applyOp(data, op);
  const log: DurableLog<OutboxOp<R>> = await openLog('webhook-outbox', OutboxRecord as unknown as z.ZodType<OutboxOp<R>>, {
    dir: dataDir,
    log: opts.log,
    health: opts.health,
    load: apply,
    snapshot: function* () {
      yield { op: 'meta', n: data.n, cursor: data.cursor };
      for (const d of data.deliveries.values()) yield { op: 'put', d };
    },
  });
  // Before the log: outbox.json (a snapshot) and outbox.journal.jsonl (the same put/set/del records).
  await importLegacyJson<{ n?: number; deliveries?: Record<string, R> }>(
    dataDir,
    'outbox.json',
    async (old, journal) => {
      if (data.deliveries.size > 0 || data.n > 0) return;
      for (const d of Object.values(old.deliveries ?? {})) apply({ op: 'put', d });
      for (const line of journal) {
        try {
          apply(parseRecordJson(line) as OutboxOp<R>);
        } catch {
          // the old journal's torn last line: that change never completed
        }
      }
      data.n = Math.max(data.n, old.n ?? 0);
      await log.compact();
    },
    'outbox.journal.jsonl',
  );
  return { data, write: (ops) => log.append(ops), close: () => log.close() };
}

function applyOp<R extends { id: string; n: number }>(data: OutboxData<R>, op: OutboxOp<R>): void {
  if (op.op === 'put') {
    data.deliveries.set(op.d.id, op.d);
    data.n = Math.max(data.n, op.d.n);
  } else if (op.op === 'set') {
    const rec = data.deliveries.get(op.id) as Record<string, unknown> | undefined;
    if (!rec) return;
    for (const [k, v] of Object.entries(op.f)) {
      if (v === null) delete rec[k];
      else rec[k] = v;
    }
  } else if (op.op === 'del') {
    data.deliveries.delete(op.id);
  } else if (op.op === 'meta') {
    data.n = Math.max(data.n, op.n);
    data.cursor = Math.max(data.cursor, op.cursor);
  }
}
