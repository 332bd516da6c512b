import { fork, type ChildProcess } from 'node:child_process';

/** A forked bench helper speaking typed IPC messages `{t, ...}` both ways. */
export interface IpcChild<Cmd, Ev extends { t: string }> {
  child: ChildProcess;
  send(cmd: Cmd): void;
  /** The next event of type t (events of other types are not consumed by the wait). */
  next<T extends Ev['t']>(t: T): Promise<Extract<Ev, { t: T }>>;
  /** send, then wait for the answer of type t. */
  ask<T extends Ev['t']>(cmd: Cmd, t: T): Promise<Extract<Ev, { t: T }>>;
}

export function forkChild<Cmd, Ev extends { t: string }>(file: string): IpcChild<Cmd, Ev> {
  const child = fork(file, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters: Array<{ t: string; resolve(e: Ev): void; reject(err: Error): void }> = [];
  child.on('message', (e: Ev) => {
    const i = waiters.findIndex((w) => w.t === e.t);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(e);
  });
  child.on('exit', (code, signal) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`${file} exited (${code ?? signal}) while waiting for "${w.t}"`));
  });
  const next = <T extends Ev['t']>(t: T) => new Promise<Extract<Ev, { t: T }>>((resolve, reject) => waiters.push({ t, resolve: resolve as (e: Ev) => void, reject }));
  return {
    child,
    send: (cmd) => child.send(cmd as object),
    next,
    ask(cmd, t) {
      const p = next(t);
      child.send(cmd as object);
      return p;
    },
  };
}
