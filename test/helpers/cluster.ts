/**
 * Starts real controller and agent processes on loopback (port 0) for tests, and talks HTTP to them.
 * Every process is a child `node --import tsx scripts/outpost.ts ...`, so tests exercise the real CLI,
 * the real link and real restarts (SIGKILL included).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

export const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'scripts/outpost.ts');

export async function tempDir(prefix = 'outpost-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first match of re in stdout+stderr (waiting for it to appear). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/**
 * `wrapper` prefixes the node command, e.g. `['ip', 'netns', 'exec', 'ns1']` (which execs, so signals
 * reach node); `nodeFlags` go to node itself (V8 flags, as a systemd unit's ExecStart gives them).
 */
export function run(args: string[], env: Record<string, string> = {}, cwd = ROOT, wrapper: string[] = [], nodeFlags: string[] = []): Proc {
  const [cmd, ...pre] = [...wrapper, process.execPath];
  const child = spawn(cmd, [...pre, ...nodeFlags, '--import', 'tsx', CLI, ...args], { cwd, env: { ...process.env, OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => {
    for (const w of waiters.splice(0)) w();
    res(code);
  }));
  return {
    child,
    exited,
    output: () => out,
    waitFor(re, timeoutMs = 20_000) {
      return new Promise((resolveP, reject) => {
        const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${re} in output:\n${out.slice(-3000)}`)), timeoutMs);
        const check = () => {
          const m = out.match(re);
          if (m) {
            clearTimeout(deadline);
            resolveP(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(deadline);
            reject(new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${re}:\n${out.slice(-3000)}`));
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

/** A process that did not start in time is killed: left running it kept the test process (and the e2e lock) alive. */
async function startedOrKilled(p: Proc, ready: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> {
  try {
    return await p.waitFor(ready, timeoutMs);
  } catch (err) {
    p.child.kill('SIGKILL');
    throw err;
  }
}

export async function stopProc(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(t);
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export async function http<T = any>(method: string, url: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let parsed: any = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

export interface ControllerOpts {
  dataDir?: string;
  config?: Record<string, unknown>;
  adminToken?: string;
  env?: Record<string, string>;
  /** Command wrapper as for run(), e.g. to start the controller under a profiler. */
  wrapper?: string[];
  /** Flags for node itself, e.g. the shipped unit's V8 flags (scripts/bench/lib/shipped.ts). */
  nodeFlags?: string[];
}

export class TestController {
  proc!: Proc;
  url = '';
  port = 0;
  readonly adminToken: string;
  readonly dataDir: string;
  private readonly configFile: string;

  private constructor(
    private readonly dir: string,
    private readonly opts: ControllerOpts,
  ) {
    this.adminToken = opts.adminToken ?? `opa_test_${randomBytes(12).toString('hex')}`;
    this.dataDir = opts.dataDir ?? join(dir, 'controller');
    this.configFile = join(dir, 'controller-config.json');
  }

  static async start(opts: ControllerOpts = {}): Promise<TestController> {
    const c = new TestController(await tempDir(), opts);
    const heartbeat = { intervalMs: 200, downAfter: 3, upAfter: 2 };
    await writeFile(c.configFile, JSON.stringify({ host: '127.0.0.1', port: 0, dataDir: c.dataDir, heartbeat, ...opts.config }));
    await c.boot();
    return c;
  }

  /** Starts (again) on the same data dir; the port may change unless the config fixes it. */
  async boot(timeoutMs?: number): Promise<void> {
    this.proc = run(['controller', '--config', this.configFile], { OUTPOST_ADMIN_TOKEN: this.adminToken, ...(this.opts.env ?? {}) }, ROOT, this.opts.wrapper, this.opts.nodeFlags);
    const m = await startedOrKilled(this.proc, /Outpost controller (http:\/\/[^\s]+)/, timeoutMs);
    this.url = m[1];
    this.port = Number(new URL(this.url).port);
  }

  /** Restarts on the same port so agents find it again (SIGKILL by default: a crash). */
  /** Stops the controller with signal and starts it again, after it has stayed down until `downUntil` (epoch ms) when given. */
  async restart(signal: NodeJS.Signals = 'SIGKILL', downUntil = 0, bootTimeoutMs?: number): Promise<void> {
    await stopProc(this.proc, signal);
    await sleep(downUntil - Date.now());
    await writeFile(this.configFile, JSON.stringify({ host: '127.0.0.1', port: this.port, dataDir: this.dataDir, heartbeat: { intervalMs: 200, downAfter: 3, upAfter: 2 }, ...this.opts.config }));
    await this.boot(bootTimeoutMs);
  }

  api<T = any>(method: string, path: string, body?: unknown, token: string | undefined = this.adminToken): Promise<ApiResponse<T>> {
    return http<T>(method, this.url + path, { token, body });
  }

  async joinToken(opts: { ttl?: string; uses?: number; labels?: Record<string, string> } = {}): Promise<string> {
    const r = await this.api('POST', '/api/v1/tokens', { ttl: opts.ttl ?? '10m', uses: opts.uses ?? 1, labels: opts.labels });
    if (r.status !== 201) throw new Error(`token create failed: ${r.text}`);
    return r.body.token;
  }

  async node(id: string): Promise<any> {
    return (await this.api('GET', `/api/v1/nodes/${id}`)).body?.node;
  }

  async stop(): Promise<void> {
    await stopProc(this.proc);
    await rm(join(this.dataDir, '..'), { recursive: true, force: true });
  }
}

export interface AgentOpts {
  name?: string;
  plugins?: Record<string, unknown>;
  config?: Record<string, unknown>;
  labels?: Record<string, string>;
  env?: Record<string, string>;
  /** Command prefix for join and agent processes, e.g. `['ip', 'netns', 'exec', 'ns1']`. */
  wrapper?: string[];
  /** Join with this token (e.g. one a test read off the dashboard) instead of a fresh one. */
  token?: string;
}

export class TestAgent {
  proc!: Proc;
  port = 0;
  nodeId = '';
  readonly dataDir: string;
  private readonly configFile: string;

  private constructor(
    private readonly controller: TestController,
    dir: string,
    private readonly opts: AgentOpts,
  ) {
    this.dataDir = join(dir, 'agent');
    this.configFile = join(dir, 'agent-config.json');
  }

  /** Joins (with a fresh one-use token unless given one) and starts the agent process. */
  static async start(controller: TestController, opts: AgentOpts = {}): Promise<TestAgent> {
    const a = new TestAgent(controller, await tempDir('outpost-agent-'), opts);
    await a.writeConfig();
    const join = run(['agent', 'join', '--config', a.configFile, '--controller', controller.url, '--token', opts.token ?? (await controller.joinToken()), '--json'], {}, ROOT, opts.wrapper);
    const code = await join.exited;
    if (code !== 0) throw new Error(`agent join failed: ${join.output()}`);
    a.nodeId = JSON.parse(join.output().slice(join.output().indexOf('{'))).nodeId;
    await a.boot();
    return a;
  }

  private async writeConfig(): Promise<void> {
    await writeFile(
      this.configFile,
      JSON.stringify({
        name: this.opts.name ?? `agent-${randomBytes(3).toString('hex')}`,
        host: '127.0.0.1',
        port: this.port,
        address: '127.0.0.1',
        dataDir: this.dataDir,
        labels: this.opts.labels ?? {},
        plugins: this.opts.plugins ?? { 'server-stats': { interval: 1, diskInterval: 5 } },
        link: { backoff: { baseDelay: 0.1, factor: 1.5, jitter: 0.2, maxDelay: 1 } },
        ...this.opts.config,
      }),
    );
  }

  async boot(): Promise<void> {
    this.proc = run(['agent', '--config', this.configFile], this.opts.env ?? {}, ROOT, this.opts.wrapper);
    const m = await startedOrKilled(this.proc, /Outpost agent (\S+) serving on port (\d+)/);
    this.port = Number(m[2]);
  }

  /** Restarts on the same local port (SIGKILL by default). */
  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await stopProc(this.proc, signal);
    await this.writeConfig();
    await this.boot();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return stopProc(this.proc, signal);
  }

  local<T = any>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    return http<T>(method, `http://127.0.0.1:${this.port}${path}`, { body });
  }

  async stop(): Promise<void> {
    await stopProc(this.proc);
    await rm(join(this.dataDir, '..'), { recursive: true, force: true });
  }
}

/** Polls until fn returns a truthy value, or fails naming what was awaited. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback port nothing listens on right now (bound, read, released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Whether a process still exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
