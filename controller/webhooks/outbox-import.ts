import { access, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { openLog } from '../../plugins/sdk/durable/log.ts';
import type { DueQueue } from '../../plugins/sdk/durable/queue.ts';
import { importLegacyJson } from '../../plugins/sdk/durable/legacy-json.ts';
import { parseRecordJson } from '../../plugins/sdk/durable/record-json.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import { laneKey, type Delivery, type DeliveryItem } from './delivery.ts';
import type { FinishedDeliveries } from './finished.ts';

/**
 * Older releases kept the outbox as a log of its own (`webhook-outbox.*`: put = a whole delivery,
 * set = some fields, null removes one, del = forget it, meta = last delivery number and the event
 * fan-out's cursor), and before that as `outbox.json` + `outbox.journal.jsonl` (the same put/set/del).
 */
type OldOp = { op: 'put'; d: OldDelivery } | { op: 'set'; id: string; f: Record<string, unknown> } | { op: 'del'; id: string } | { op: 'meta'; n: number; cursor: number };
type OldDelivery = Omit<Delivery, 'expiresAt'> & { n: number; expiresAt?: number };

const OldRecord = z.discriminatedUnion('op', [
  z.object({ op: z.literal('put'), d: z.looseObject({ id: z.string().min(1), key: z.string(), n: z.number(), url: z.string(), body: z.string(), event: z.string(), state: z.enum(['pending', 'delivered', 'dead']), attempts: z.number(), createdAt: z.number(), nextAt: z.number() }) }),
  z.object({ op: z.literal('set'), id: z.string(), f: z.record(z.string(), z.unknown()) }),
  z.object({ op: z.literal('del'), id: z.string() }),
  z.object({ op: z.literal('meta'), n: z.number(), cursor: z.number() }),
]) as unknown as z.ZodType<OldOp>;

interface OldData {
  n: number;
  cursor: number;
  deliveries: Map<string, OldDelivery>;
}

const OLD_LOG = ['webhook-outbox.snapshot.jsonl', 'webhook-outbox.journal.jsonl'];

/**
 * Carries an older release's outbox into the queue and the finished log, once: pending deliveries
 * in their lane order with their ids, keys and due times (attempt counts start again), dead ones to
 * the finished log, the fan-out's cursor as the queue's checkpoint. Only then are the old files
 * renamed `*.migrated`; an import cut short by a crash is simply done again (ids already held are
 * not queued twice).
 */
export async function importOldOutbox(dataDir: string, to: { queue: DueQueue<DeliveryItem>; finished: FinishedDeliveries; log: Log; maxAgeMs: number }): Promise<void> {
  const present = (await Promise.all(OLD_LOG.map((f) => access(join(dataDir, f)).then(() => true, () => false)))).some(Boolean);
  const data: OldData = { n: 0, cursor: 0, deliveries: new Map() };
  if (present) {
    const old = await openLog('webhook-outbox', OldRecord, { dir: dataDir, log: to.log, readOnly: true, load: (op) => apply(data, op), snapshot: () => [] });
    await old.close();
  }
  let carried = false;
  await importLegacyJson<{ n?: number; deliveries?: Record<string, OldDelivery> }>(
    dataDir,
    'outbox.json',
    async (old, journal) => {
      if (data.deliveries.size === 0 && data.n === 0) {
        for (const d of Object.values(old.deliveries ?? {})) apply(data, { op: 'put', d });
        for (const line of journal) {
          try {
            apply(data, parseRecordJson(line) as OldOp);
          } catch {
            // the old journal's torn last line: that change never completed
          }
        }
      }
      await carry(data, to);
      carried = true;
    },
    'outbox.journal.jsonl',
  );
  if (!present) return;
  if (!carried) await carry(data, to);
  for (const f of OLD_LOG) await rename(join(dataDir, f), join(dataDir, `${f}.migrated`)).catch(() => undefined);
  to.log.info({ pending: [...data.deliveries.values()].filter((d) => d.state === 'pending').length }, 'webhook outbox of an older release carried into webhook-queue');
}

async function carry(data: OldData, to: { queue: DueQueue<DeliveryItem>; finished: FinishedDeliveries; maxAgeMs: number }): Promise<void> {
  const all = [...data.deliveries.values()].sort((a, b) => a.n - b.n);
  const pending = all.filter((d) => d.state === 'pending');
  await to.queue.scheduleMany(
    pending.map((d) => ({
      id: d.id,
      key: laneKey(d.key),
      dueAt: d.nextAt,
      item: { url: d.url, body: d.body, event: d.event, ...(d.contentType && d.contentType !== 'application/json' ? { contentType: d.contentType } : {}), ...(d.secret ? { secret: d.secret } : {}), ...(d.subscription ? { subscription: d.subscription } : {}), createdAt: d.createdAt, expiresAt: d.expiresAt ?? d.createdAt + to.maxAgeMs },
    })),
    data.cursor ? { checkpoint: data.cursor } : {},
  );
  const dead = all.filter((d) => d.state === 'dead' && !to.finished.getDead(d.id));
  await to.finished.died(dead.map(({ n: _n, ...d }) => ({ ...d, contentType: d.contentType ?? 'application/json', expiresAt: d.expiresAt ?? d.createdAt + to.maxAgeMs })));
}

function apply(data: OldData, op: OldOp): void {
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
