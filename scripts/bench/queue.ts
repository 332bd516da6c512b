/**
 * queue: the SDK's due-time queue (plugins/sdk/durable/queue.ts) with 100,000 pending items, each in
 * a process of its own (scripts/bench/lib/queue-child.ts):
 *
 * 1. enqueue: N schedule() calls, C in flight, with fsync 'always' (survives a power loss) and 'interval'
 *    (survives kill -9; an fsync every 200 ms bounds a power loss); the process is then SIGKILLed with
 *    everything pending;
 * 2. reload: a fresh process opens the queue the killed one left: time to open, all N there, RSS;
 * 3. due: M items falling due over a few seconds, leased as they do: lateness (jobs: due within 50 ms).
 *
 * Peer, in the same run: the same records appended to a bare JSONL file with the same group commit and
 * fdatasync, and read back with JSON.parse into a Map: what durability costs without the queue.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numericFlags } from './lib/args.ts';
import { raisePriority } from './lib/proc.ts';
import { figure, mb, ms, percentile, printTable, progress } from './lib/report.ts';

const opts = numericFlags('queue', { items: 100_000, concurrency: 16, due: 10_000, spreadMs: 3_000, nice: 10 });
const CHILD = join(import.meta.dirname, 'lib/queue-child.ts');

interface Life {
  result: Record<string, unknown> & { rss: number };
  kill(): Promise<void>;
}

/** Runs one life; resolves with its RESULT line (the process keeps running for enqueue modes). */
function life(args: string[]): Promise<Life> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    raisePriority(child.pid, opts.nice);
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^RESULT (.*)\n/m.exec(out);
      if (m) {
        out = '';
        resolve({
          result: JSON.parse(m[1]),
          kill: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
    child.on('exit', (code) => reject(new Error(`queue-child ${args[0]} exited (${code}) without a result`)));
  });
}

const base = await mkdtemp(join(tmpdir(), 'outpost-bench-queue-'));
try {
  const N = opts.items;
  const C = String(opts.concurrency);
  type R = Record<string, number>;
  const runs: Record<string, { enq: R; rel: R; penq: R; prel: R }> = {};
  for (const fsync of ['always', 'interval'] as const) {
    const dir = join(base, fsync);
    await mkdir(dir);
    progress(`queue (fsync ${fsync}): scheduling ${N} items, ${C} in flight`);
    const enq = await life(['enqueue', dir, String(N), C, fsync]);
    await enq.kill();
    progress(`queue (fsync ${fsync}): SIGKILLed with everything pending; reloading`);
    const rel = (await life(['reload', dir, String(N)])).result as R;
    if (rel.pending !== N) throw new Error(`reload found ${rel.pending} items, ${N} were acknowledged`);
    progress(`peer (${fsync === 'always' ? 'group commit + fdatasync' : 'group commit, no fsync'}): bare JSONL append`);
    const penq = await life(['peer-enqueue', dir, String(N), C, fsync]);
    await penq.kill();
    const prel = (await life(['peer-reload', dir, String(N)])).result as R;
    runs[fsync] = { enq: enq.result as R, rel, penq: penq.result as R, prel };
  }

  progress(`queue: ${opts.due} items falling due over ${opts.spreadMs} ms`);
  const due = (await life(['due', base, String(opts.due), String(opts.spreadMs)])).result;
  const late = due.late as number[];

  const rate = (r: R) => `${Math.round(N / r.seconds)}/s`;
  for (const [fsync, r] of Object.entries(runs)) {
    printTable(
      `enqueue, fsync ${fsync}: ${N} schedule() calls, ${C} in flight, each resolving once written${fsync === 'always' ? ' and fsynced' : ' (fsync every 200 ms)'}`,
      [
        ['p50', ms(r.enq.p50), ms(r.penq.p50)],
        ['p99', ms(r.enq.p99), ms(r.penq.p99)],
        ['max', ms(r.enq.max), ms(r.penq.max)],
        ['throughput', rate(r.enq), rate(r.penq)],
        ['RSS after', mb(r.enq.rss), mb(r.penq.rss)],
      ],
      ['', 'queue', `peer: bare JSONL${fsync === 'always' ? ' + fdatasync' : ''}`],
    );
  }
  const rel = runs.always.rel;
  const prel = runs.always.prel;
  printTable(
    `reload after kill -9 with ${N} pending (fsync always run; the interval run found all ${runs.interval.rel.pending} too)`,
    [
      ['open (read, validate, heap)', ms(rel.ms), ms(prel.ms)],
      ['items found', String(rel.pending), String(prel.pending)],
      ['process start to ready', ms(rel.uptimeMs), ''],
      ['RSS holding them', mb(rel.rss), mb(prel.rss)],
    ],
    ['', 'queue', 'peer: JSON.parse into a Map'],
  );
  printTable(`due: ${opts.due} items due over ${opts.spreadMs} ms, leased as they fall due`, [
    ['lateness p50', ms(percentile(late, 50))],
    ['lateness p99', ms(percentile(late, 99))],
    ['lateness max', ms(Math.max(...late))],
  ]);
  figure(
    'queue',
    `${N} pending: enqueue p99 ${ms(runs.always.enq.p99)} fsync always (peer ${ms(runs.always.penq.p99)}), ${ms(runs.interval.enq.p99)} fsync interval (peer ${ms(runs.interval.penq.p99)}); reload after kill -9 ${(rel.ms / 1000).toFixed(2)} s (peer ${(prel.ms / 1000).toFixed(2)} s); RSS ${mb(rel.rss)}; due lateness p99 ${ms(percentile(late, 99))}`,
  );
} finally {
  await rm(base, { recursive: true, force: true });
}
