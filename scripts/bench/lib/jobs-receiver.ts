/** The parent's handle on the receiver process (jobs-receiver-proc.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface ReceiverStats {
  count: number;
  duplicates: number;
  unsigned: number;
  malformed: number;
  /** First and last callback received, ms since epoch. */
  first: number;
  last: number;
  /** Received minus due, ms, per job (only when asked for). */
  lateness: number[];
}

export class JobsReceiver {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(): Promise<JobsReceiver> {
    const child = fork(join(import.meta.dirname, 'jobs-receiver-proc.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
    });
    return new JobsReceiver(child, `http://127.0.0.1:${port}/callback`);
  }

  get pid(): number {
    return this.child.pid!;
  }

  private ask<T>(msg: object, op: string): Promise<T> {
    return new Promise((resolve) => {
      const on = (m: { op: string }) => {
        if (m.op !== op) return;
        this.child.off('message', on);
        resolve(m as T);
      };
      this.child.on('message', on);
      this.child.send(msg);
    });
  }

  async reset(jobs: number): Promise<void> {
    await this.ask({ op: 'reset', jobs }, 'ready');
  }

  /** withLateness: also the per-job lateness list (large; ask once at the end). */
  stats(withLateness = false): Promise<ReceiverStats> {
    return this.ask({ op: 'stats', jobs: withLateness ? 1 : 0 }, 'stats');
  }

  async stop(): Promise<void> {
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.send({ op: 'exit' });
    await gone;
  }
}
