/**
 * One life of the queue benchmark (scripts/bench/queue.ts), in its own process so it can be SIGKILLed
 * and its reload timed from a cold start. Prints one `RESULT {json}` line, then (enqueue modes) idles
 * until killed.
 *
 *   enqueue DIR N C FSYNC openQueue (fsync always|interval), then N schedule() calls, C in flight, due in an hour (they stay pending)
 *   reload DIR N          openQueue on what a killed `enqueue` left; checks all N are there
 *   due DIR M SPREAD_MS   M items due over the next SPREAD_MS, leased as they fall due: lateness per item
 *   peer-enqueue DIR N C FSYNC  the floor: the same records appended to a bare JSONL file, group commit (+ fdatasync for always)
 *   peer-reload DIR N     the floor: that file read back with JSON.parse per line into a Map
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { openQueue } from '../../../plugins/sdk/durable/queue.ts';
import { GroupCommit } from '../../../plugins/sdk/durable/group-commit.ts';
import { createLog } from '../../../plugins/sdk/log.ts';
import { inFlight } from './report.ts';

/** A jobs task as the jobs plugin would queue it (Serendipity's task/create fields). */
const Task = z.object({ app: z.string(), taskNo: z.string(), linkUrl: z.string(), content: z.unknown(), timeout: z.number(), step: z.number(), retryTotal: z.number() });
type Task = z.infer<typeof Task>;

const [mode, dir, a, b, c] = process.argv.slice(2);
const log = createLog('queue-bench', 'warn');
const result = (r: object) => process.stdout.write(`RESULT ${JSON.stringify({ ...r, rss: process.memoryUsage().rss })}\n`);
const task = (i: number): Task => ({ app: 'bench', taskNo: `task-${i.toString(36).padStart(6, '0')}`, linkUrl: 'http://127.0.0.1:9/callback', content: { order: i, note: 'queued by the queue benchmark' }, timeout: 60_000, step: 5, retryTotal: 3 });
/** One in ten items joins one of 100 lanes (webhook-like); the rest are independent (jobs-like). */
const keyOf = (i: number) => (i % 10 === 0 ? { key: `lane-${i % 100}` } : {});

/** Runs n calls of op with c in flight: latency percentiles in ms and the wall time. */
async function timed(n: number, c: number, op: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number; max: number; seconds: number }> {
  const { lat, seconds } = await inFlight(n, c, op);
  lat.sort((x, y) => x - y);
  return { p50: lat[Math.ceil(n * 0.5) - 1], p99: lat[Math.ceil(n * 0.99) - 1], max: lat[n - 1], seconds };
}

const idle = () => setInterval(() => undefined, 1 << 30);

if (mode === 'enqueue') {
  const q = await openQueue('bench', Task, { dir, log, fsync: c === 'interval' ? 'interval' : 'always' });
  const due = Date.now() + 3_600_000;
  const stats = await timed(Number(a), Number(b), (i) => q.schedule(task(i), due, keyOf(i)));
  result({ ...stats, pending: (await q.counts()).pending });
  idle();
} else if (mode === 'reload') {
  const t0 = performance.now();
  const q = await openQueue('bench', Task, { dir, log });
  const ms = performance.now() - t0;
  const lanes = (await q.lease(1_000_000, 60_000)).length;
  const counts = await q.counts();
  result({ ms, pending: counts.pending + counts.leased, expected: Number(a), uptimeMs: process.uptime() * 1000, leasableNow: lanes });
  await q.close();
} else if (mode === 'due') {
  const [m, spread] = [Number(a), Number(b)];
  const q = await openQueue('due', Task, { dir, log });
  const late: number[] = [];
  // The first item falls due a second after scheduling starts: all are on disk (leasable) before any is due.
  const t0 = Date.now() + 1000;
  q.onReady(async function take() {
    for (const it of await q.lease(1000, 60_000)) {
      late.push(Date.now() - it.dueAt);
      void q.ack(it.id, it.token);
    }
  });
  await q.scheduleMany(Array.from({ length: m }, (_, i) => ({ item: task(i), dueAt: t0 + Math.floor(Math.random() * spread) })));
  while (late.length < m) await new Promise((r) => setTimeout(r, 50));
  result({ late });
  await q.close();
} else if (mode === 'peer-enqueue') {
  const fh = await open(join(dir, 'peer.jsonl'), 'w', 0o600);
  const commit = new GroupCommit<string>(async (lines) => {
    await fh.write(lines.join('\n') + '\n');
    if (c !== 'interval') await fh.datasync();
  });
  const due = Date.now() + 3_600_000;
  const stats = await timed(Number(a), Number(b), (i) => commit.add([JSON.stringify({ t: 's', id: `q_${i.toString(36)}`, seq: i + 1, ...keyOf(i), due, item: task(i), att: 0, at: Date.now() })]));
  result(stats);
  idle();
} else if (mode === 'peer-reload') {
  const t0 = performance.now();
  const items = new Map<string, unknown>();
  const text = await readFile(join(dir, 'peer.jsonl'), 'utf8');
  for (const line of text.split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as { id: string };
    items.set(r.id, r);
  }
  result({ ms: performance.now() - t0, pending: items.size, expected: Number(a) });
} else {
  process.stderr.write(`queue-child: unknown mode ${mode}\n`);
  process.exit(2);
}
