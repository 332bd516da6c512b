/**
 * The BullMQ worker process: takes due jobs from Redis and performs the same callback Outpost's agent
 * does (plugins/jobs/callback.ts: same signed headers, same success rule), so the two sides differ
 * only in how jobs are stored, scheduled and dispatched. Config from the environment; IPC 'exit' stops it.
 */
import { Worker } from 'bullmq';
import { performCallback } from '../../../plugins/jobs/callback.ts';
import { BENCH_APP } from './jobs-side.ts';

const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null };
const linkUrl = process.env.RECEIVER_URL!;

const worker = new Worker<{ i: number; content: string }>(
  'jobs-bench',
  async (job) => {
    const r = await performCallback({ taskId: job.data.i, n: job.attemptsMade + 1, node: 'bullmq-worker', linkUrl, content: job.data.content, timeoutMs: 60_000, ...BENCH_APP });
    if (!r.ok) throw new Error(r.error ?? 'callback failed');
  },
  { connection, concurrency: Number(process.env.CONCURRENCY) },
);
await worker.waitUntilReady();
process.send!({ op: 'ready' });
process.on('message', async (m: { op: string }) => {
  if (m.op !== 'exit') return;
  await worker.close();
  process.exit(0);
});
// The bench is gone (crashed or killed): do not outlive it.
process.on('disconnect', () => process.exit(0));
