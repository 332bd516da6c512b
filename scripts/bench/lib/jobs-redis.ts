/**
 * A redis-server of the bench's own on a free loopback port, in a temp dir, stopped after. Persistence:
 * no RDB snapshots, AOF with `appendfsync everysec`. That is the closest match to Outpost's durability
 * (a task is written before it is acknowledged, no fsync per request); Redis's default without a config
 * file would keep jobs in memory only until the next snapshot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../test/helpers/cluster.ts';
import { SideUnavailable } from './jobs-side.ts';

export interface RedisServer {
  port: number;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--daemonize', 'no', '--loglevel', 'notice'];
  let child: ChildProcess;
  try {
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new SideUnavailable(`cannot start redis-server: ${(err as Error).message}`);
  }
  let out = '';
  const ready = new Promise<string>((resolve, reject) => {
    child.once('error', (err) => reject(new SideUnavailable(`redis-server not found (Debian package redis-server; test/e2e/run.sh --deps installs it): ${err.message}`)));
    child.once('exit', (code) => reject(new SideUnavailable(`redis-server exited with ${code}: ${out.slice(-500)}`)));
    const on = (b: Buffer) => {
      out += b.toString();
      if (/Ready to accept connections/.test(out)) resolve(/version=(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? 'unknown');
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
  });
  // A bench that dies on an error must not leave its redis-server behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const version = await ready;
  return {
    port,
    pid: child.pid!,
    version,
    async stop() {
      const gone = new Promise((r) => child.once('exit', r));
      process.off('exit', reap);
      child.kill('SIGTERM');
      await gone;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
