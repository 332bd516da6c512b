/**
 * The controller side of the link-channels bench (forked by link-channels.ts): a real controller
 * (startController, in this process) whose channel hub is driven the way a plugin would drive it:
 * broadcasts to every node at an offered rate, or one-node sends paced at a rate for latency.
 */
import { randomBytes } from 'node:crypto';
import HyperExpress from 'hyper-express';
import { startController, type ControllerHandle } from '../../../controller/main.ts';
import { ControllerConfig } from '../../../controller/config.ts';
import { createLog } from '../../../plugins/sdk/log.ts';
import { monoMs, payload, type PayloadKind } from './channel-payload.ts';


export type ControllerCommand =
  | { t: 'start'; dataDir: string; adminToken: string }
  | { t: 'lanes' }
  /** `rate` broadcasts per second to every node for `seconds`; `rate` 0 = as fast as the loop turns. */
  | { t: 'broadcast'; kind: PayloadKind; rate: number; seconds: number; size: number }
  /** `rate` sends per second, each to the next node in turn, stamped with the monotonic clock. */
  | { t: 'paced'; kind: PayloadKind; rate: number; seconds: number; size: number }
  /** The peer: a bare hyper-express WebSocket server in this process, no link protocol, no channels. */
  | { t: 'bare-start' }
  /** The same paced sends over the bare server's connections: raw bytes, the send time in the first 8. */
  | { t: 'bare-paced'; rate: number; seconds: number; size: number }
  | { t: 'stop' };

export type ControllerEvent = { t: 'ready'; url: string } | { t: 'bare-ready'; port: number } | { t: 'lanes'; open: number } | { t: 'done'; calls: number; took: number; seconds: number; cpuSeconds: number } | { t: 'stopped' };


let h: ControllerHandle | undefined;
const bareConns: HyperExpress.Websocket[] = [];
const reply = (e: ControllerEvent) => process.send!(e);

/** Calls `each(i)` `rate` times per second (or back to back, yielding to the loop, when rate is 0) for `seconds`. */
function pace(rate: number, seconds: number, each: (i: number) => number): Promise<{ calls: number; took: number; seconds: number; cpuSeconds: number }> {
  return new Promise((resolve) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    let calls = 0;
    let took = 0;
    const tick = () => {
      const now = performance.now();
      if (now >= end) {
        const cpu = process.cpuUsage(cpu0);
        return resolve({ calls, took, seconds: (now - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
      }
      const due = rate > 0 ? Math.floor(((now - t0) / 1000) * rate) : calls + 64;
      while (calls < due) took += each(calls++);
      if (rate > 0) setTimeout(tick, 1);
      else setImmediate(tick);
    };
    tick();
  });
}

process.on('message', async (cmd: ControllerCommand) => {
  switch (cmd.t) {
    case 'start': {
      const config = ControllerConfig.parse({ host: '127.0.0.1', port: 0, dataDir: cmd.dataDir, plugins: {}, heartbeat: { intervalMs: 2000, downAfter: 3, upAfter: 2 } });
      h = await startController(config, { log: createLog('controller', 'error'), adminToken: cmd.adminToken });
      return reply({ t: 'ready', url: h.url });
    }
    case 'lanes':
      return reply({ t: 'lanes', open: h!.channels.depths().length });
    case 'broadcast': {
      const body = payload(cmd.kind, randomBytes(cmd.size));
      const r = await pace(cmd.rate, cmd.seconds, (seq) => h!.channels.broadcast('bench', 'all', 'fan', { seq, body }));
      return reply({ t: 'done', ...r });
    }
    case 'paced': {
      const body = payload(cmd.kind, randomBytes(cmd.size));
      const nodes = h!.channels.depths().map(([id]) => id);
      const r = await pace(cmd.rate, cmd.seconds, (seq) => (h!.channels.send('bench', nodes[seq % nodes.length], 'push', { seq, sentAt: monoMs(), body }) ? 1 : 0));
      return reply({ t: 'done', ...r });
    }
    case 'bare-start': {
      const bare = new HyperExpress.Server({ auto_close: false });
      bare.ws('/bare', { max_payload_length: 64 * 1024 }, (ws) => {
        bareConns.push(ws);
        ws.on('close', () => void bareConns.splice(bareConns.indexOf(ws), 1));
      });
      await bare.listen(0, '127.0.0.1');
      return reply({ t: 'bare-ready', port: bare.port });
    }
    case 'bare-paced': {
      const body = randomBytes(cmd.size + 8);
      const r = await pace(cmd.rate, cmd.seconds, (seq) => {
        const frame = Buffer.from(body);
        frame.writeDoubleBE(monoMs(), 0);
        bareConns[seq % bareConns.length].send(frame, true);
        return 1;
      });
      return reply({ t: 'done', ...r });
    }
    case 'stop':
      await h?.stop();
      reply({ t: 'stopped' });
      process.exit(0);
  }
});
