/**
 * The peer: BullMQ on a local redis-server. Jobs are added one request each (Queue.add, `clients` at
 * a time, like clients of Outpost's signed API) as delayed jobs with the same retry budget as an
 * Outpost application's default (1 + 5 attempts); completed jobs are kept, as Outpost keeps task records.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { startRedis, type RedisServer } from './jobs-redis.ts';
import { jobContent, withClients, type BenchJob, type JobsSide, type SideOptions } from './jobs-side.ts';

export class BullmqSide implements JobsSide {
  name = 'BullMQ';
  private redis: RedisServer | undefined;
  private queue: Queue | undefined;
  private worker: ChildProcess | undefined;

  constructor(private readonly opts: SideOptions) {}

  async start(): Promise<Record<string, number>> {
    this.redis = await startRedis();
    this.name = `BullMQ (redis-server ${this.redis.version}, AOF everysec)`;
    this.queue = new Queue('jobs-bench', { connection: { host: '127.0.0.1', port: this.redis.port } });
    this.queue.on('error', (err) => process.stderr.write(`BullMQ queue: ${err.message}\n`));
    await this.queue.waitUntilReady();
    this.worker = fork(join(import.meta.dirname, 'jobs-bullmq-worker.ts'), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, REDIS_PORT: String(this.redis.port), RECEIVER_URL: this.opts.receiverUrl, CONCURRENCY: String(this.opts.concurrency) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      this.worker!.once('message', () => resolve());
      this.worker!.once('exit', (code) => reject(new Error(`BullMQ worker exited with ${code}`)));
    });
    return { 'redis-server': this.redis.pid, 'BullMQ worker': this.worker.pid! };
  }

  async create(jobs: BenchJob[]): Promise<void> {
    await withClients(jobs, this.opts.clients, async (j) => {
      await this.queue!.add('callback', { i: j.i, content: jobContent(j) }, { delay: Math.max(0, j.due - Date.now()), attempts: 6, backoff: { type: 'fixed', delay: 0 } });
    });
  }

  async stop(): Promise<void> {
    if (this.worker && this.worker.exitCode === null) {
      const gone = new Promise((r) => this.worker!.once('exit', r));
      this.worker.send({ op: 'exit' });
      await gone;
    }
    await this.queue?.close();
    await this.redis?.stop();
  }
}
