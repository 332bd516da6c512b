/**
 * Process handling for the comet bench: servers and client workers are spawned with the open-files
 * limit raised (50,000 sockets in one process are over the default hard limit; root may lift it),
 * and driven over IPC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { ServerCommand, ServerEvent, WorkerCommand, WorkerEvent } from './comet-bench-ipc.ts';

/** Open files wanted per process; the shell keeps the current hard limit when it may not raise it. */
export const FD_WANTED = 120_000;

export interface Proc<C, E> {
  child: ChildProcess;
  send(cmd: C): void;
  next<T extends E>(pred: (e: E) => e is T, timeoutMs?: number): Promise<T>;
  last: E | undefined;
  stop(): void;
}

function start<C, E>(file: string, env: Record<string, string>, flags: string[] = []): Proc<C, E> {
  const child = spawn(
    '/bin/sh',
    ['-c', `ulimit -Hn ${FD_WANTED} 2>/dev/null; ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`, process.execPath, '--expose-gc', ...flags, '--import', 'tsx', join(import.meta.dirname, file)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } },
  );
  const waiters: Array<{ pred: (e: E) => boolean; resolve(e: E): void }> = [];
  const p: Proc<C, E> = {
    child,
    last: undefined,
    send: (cmd) => child.send(cmd as object),
    next: (pred, timeoutMs = 600_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${file}: no answer in ${timeoutMs / 1000} s`)), timeoutMs);
        waiters.push({ pred, resolve: (e) => (clearTimeout(timer), resolve(e as never)) });
      }),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  child.on('message', (e: E) => {
    p.last = e;
    const i = waiters.findIndex((w) => w.pred(e));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(e);
  });
  child.on('exit', (code, signal) => {
    if (signal !== 'SIGKILL' && code !== 0) process.stderr.write(`${file} exited with ${code ?? signal}\n`);
  });
  return p;
}

export type ServerProc = Proc<ServerCommand, ServerEvent> & { port: number };
export type WorkerProc = Proc<WorkerCommand, WorkerEvent>;

/** `flags`: extra node flags, e.g. --cpu-prof for `--profile 1`. */
export async function startServer(file: string, env: Record<string, string> = {}, flags: string[] = []): Promise<ServerProc> {
  const p = start<ServerCommand, ServerEvent>(file, env, flags);
  const ready = await p.next((e): e is Extract<ServerEvent, { t: 'ready' }> => e.t === 'ready', 60_000);
  return Object.assign(p, { port: ready.port });
}

export function startWorker(): WorkerProc {
  return start<WorkerCommand, WorkerEvent>('comet-client-worker.ts', {});
}

export const isProgress = (e: WorkerEvent): e is Extract<WorkerEvent, { t: 'progress' }> => e.t === 'progress';
export const isReport = (e: WorkerEvent): e is Extract<WorkerEvent, { t: 'report' }> => e.t === 'report';
