/**
 * A bench worker process (forked by link.ts) that plays many agents on the real link protocol:
 * hello → welcome, then a heartbeat every interval. Probe agents follow each heartbeat with a
 * replayed report (seq 1, already applied) and time the controller's ack: the controller handles
 * messages of one socket in order, so that ack cannot leave before the heartbeat was handled.
 */
import WebSocket from 'ws';
import { fakeSample } from '../../../test/helpers/raw-link.ts';
import { LoopDelay } from '../../../plugins/sdk/loop-delay.ts';

export interface SimAgent {
  nodeId: string;
  credential: string;
  probe: boolean;
  /** Runs the echo command of the test plugin `zz-fwd` (test/helpers/peer-plugin.ts): a target of forwarded commands. */
  echo?: { name: string };
}

export type WorkerCommand =
  /** welcomeTimeoutMs: a link without a welcome that long is closed and opened again (0: wait forever). */
  | { t: 'start'; url: string; agents: SimAgent[]; hbMs: number; connectConcurrency: number; welcomeTimeoutMs?: number }
  | { t: 'collect' }
  | { t: 'drop'; nodeIds: string[] }
  | { t: 'stop' };

export type WorkerEvent =
  | { t: 'progress'; connected: number; failed: number; closed: number; helloRetries: number; errors: string[] }
  /** loopP99Ms/loopMaxMs: this worker's own event-loop delay since the last collection (its share of a probe's latency). */
  | { t: 'latency'; rtts: number[]; sentAt: number[]; late: number; loopP99Ms: number; loopMaxMs: number }
  | { t: 'dropped'; at: number };

const PLUGINS = [{ name: 'server-stats', state: 'running' as const }];
const ECHO_PLUGINS = [...PLUGINS, { name: 'zz-fwd', state: 'running' as const }];

class Sim {
  ws: WebSocket | undefined;
  hbSeq = 0;
  timer: NodeJS.Timeout | undefined;
  primed = false;
  pendingSince: number | undefined;
  pendingAt = 0;
  dropped = false;

  private get plugins() {
    return this.a.echo ? ECHO_PLUGINS : PLUGINS;
  }

  constructor(
    readonly a: SimAgent,
    private readonly w: Worker,
  ) {}

  connect(url: string, attempt = 1): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      let abandoned = false;
      let welcomeTimer: NodeJS.Timeout | undefined;
      const done = (ok: boolean, why?: string) => {
        if (settled) return;
        settled = true;
        if (ok) this.w.connected++;
        else {
          this.w.failed++;
          if (why && this.w.errors.length < 5) this.w.errors.push(why);
        }
        resolve();
      };
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.a.credential}` }, handshakeTimeout: 30_000 });
      this.ws = ws;
      ws.on('open', () => {
        ws.send(JSON.stringify({ t: 'hello', nodeId: this.a.nodeId, version: 'bench', plugins: this.plugins, labels: {}, address: '127.0.0.1' }));
        // A hello the controller failed to handle leaves the link open without a welcome: start over.
        if (this.w.welcomeTimeoutMs && attempt < 10) {
          welcomeTimer = setTimeout(() => {
            abandoned = true;
            this.w.helloRetries++;
            ws.terminate();
            setTimeout(() => resolve(this.connect(url, attempt + 1)), 200 + Math.random() * 800);
          }, this.w.welcomeTimeoutMs);
        }
      });
      ws.on('message', (raw) => {
        if (abandoned) return;
        const msg = JSON.parse(String(raw));
        if (msg.t === 'welcome') {
          clearTimeout(welcomeTimer);
          done(true);
          this.startHeartbeat();
          if (this.a.probe) ws.send(JSON.stringify({ t: 'report', seq: 1, plugin: 'server-stats', type: 'sample', data: fakeSample(Date.now()), ts: Date.now() }));
        } else if (msg.t === 'command' && this.a.echo) {
          const ok = msg.plugin === 'zz-fwd' && msg.action === 'echo';
          ws.send(JSON.stringify(ok ? { t: 'reply', id: msg.id, ok, data: { text: msg.args?.text, node: this.a.echo.name } } : { t: 'reply', id: msg.id, ok, error: 'not here' }));
        } else if (msg.t === 'ack' && msg.seq === 1) {
          if (!this.primed) this.primed = true;
          else if (this.pendingSince !== undefined) {
            this.w.rtts.push(performance.now() - this.pendingSince);
            this.w.sentAt.push(this.pendingAt);
          }
          this.pendingSince = undefined;
        }
      });
      ws.on('unexpected-response', (_req, res) => {
        done(false, `HTTP ${res.statusCode}`);
        ws.terminate();
      });
      ws.on('error', (err) => abandoned || done(false, err.message));
      ws.on('close', (code, reason) => {
        clearTimeout(welcomeTimer);
        if (abandoned) return;
        clearInterval(this.timer);
        // The close code and reason say which side gave up and why (a refusal, an idle timeout, a shutdown).
        if (!settled) done(false, `closed before welcome (${code}${reason.length ? ` ${reason.toString().slice(0, 80)}` : ''})`);
        else if (!this.dropped) {
          this.w.closed++;
          this.w.progressSoon();
        }
      });
    });
  }

  private startHeartbeat(): void {
    // Real agents start at different moments; a random phase keeps the beats spread over the interval.
    setTimeout(() => {
      this.beat();
      this.timer = setInterval(() => this.beat(), this.w.hbMs);
    }, Math.random() * this.w.hbMs);
  }

  private beat(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const probing = this.a.probe && this.primed && this.pendingSince === undefined;
    if (this.a.probe && this.primed && this.pendingSince !== undefined) this.w.late++;
    const t0 = performance.now();
    ws.send(JSON.stringify({ t: 'hb', seq: ++this.hbSeq, ts: Date.now(), summary: { plugins: this.plugins, outbox: 0 } }));
    if (probing) {
      this.pendingSince = t0;
      this.pendingAt = Date.now();
      ws.send(JSON.stringify({ t: 'report', seq: 1, plugin: 'server-stats', type: 'sample', data: fakeSample(Date.now()), ts: Date.now() }));
    }
  }
}

class Worker {
  sims = new Map<string, Sim>();
  connected = 0;
  failed = 0;
  closed = 0;
  late = 0;
  errors: string[] = [];
  rtts: number[] = [];
  /** Wall-clock send time of each rtts entry: slow probes bunched in time are a server stall, spread ones are not. */
  sentAt: number[] = [];
  hbMs = 2000;
  welcomeTimeoutMs = 0;
  helloRetries = 0;

  async start(cmd: Extract<WorkerCommand, { t: 'start' }>): Promise<void> {
    this.hbMs = cmd.hbMs;
    this.welcomeTimeoutMs = cmd.welcomeTimeoutMs ?? 0;
    const queue = cmd.agents.map((a) => new Sim(a, this));
    for (const s of queue) this.sims.set(s.a.nodeId, s);
    const report = setInterval(() => this.progress(), 500);
    const lanes = Array.from({ length: Math.min(cmd.connectConcurrency, queue.length) }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) await s.connect(cmd.url);
    });
    await Promise.all(lanes);
    clearInterval(report);
    this.progress();
  }

  private progressTimer: NodeJS.Timeout | undefined;
  /** Links closed after the start are reported too (a controller killed under its agents), at most every 200 ms. */
  progressSoon(): void {
    this.progressTimer ??= setTimeout(() => {
      this.progressTimer = undefined;
      this.progress();
    }, 200);
  }

  progress(): void {
    send({ t: 'progress', connected: this.connected, failed: this.failed, closed: this.closed, helloRetries: this.helloRetries, errors: this.errors });
  }
}

function send(e: WorkerEvent): void {
  process.send?.(e);
}

const worker = new Worker();
const loop = new LoopDelay(10).enable();
// A bench that dies leaves no agents behind holding thousands of sockets.
process.on('disconnect', () => process.exit(0));
process.on('message', (cmd: WorkerCommand) => {
  switch (cmd.t) {
    case 'start':
      void worker.start(cmd);
      break;
    case 'collect':
      send({ t: 'latency', rtts: worker.rtts.splice(0), sentAt: worker.sentAt.splice(0), late: worker.late, loopP99Ms: loop.percentileMs(99), loopMaxMs: loop.maxMs() });
      worker.late = 0;
      loop.reset();
      break;
    case 'drop': {
      for (const id of cmd.nodeIds) {
        const s = worker.sims.get(id);
        if (!s) continue;
        s.dropped = true;
        clearInterval(s.timer);
        // terminate(): the socket is destroyed without a close frame, as when a node loses power.
        s.ws?.terminate();
      }
      send({ t: 'dropped', at: Date.now() });
      break;
    }
    case 'stop':
      for (const s of worker.sims.values()) s.ws?.terminate();
      process.exit(0);
  }
});
