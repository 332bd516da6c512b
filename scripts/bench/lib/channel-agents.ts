/**
 * The agent side of the link-channels bench (forked by link-channels.ts): several real agents
 * (startAgent, in this process) joined to the bench's controller, each counting what its channel hub
 * delivers and timing one-way latency of stamped messages.
 */
import { join } from 'node:path';
import WebSocket from 'ws';
import { startAgent, type AgentHandle } from '../../../agent/main.ts';
import { AgentConfig } from '../../../agent/config.ts';
import { createLog } from '../../../plugins/sdk/log.ts';
import { monoMs } from './channel-payload.ts';

export type AgentsCommand = { t: 'start'; url: string; token: string; count: number; dir: string; prefix: string } | { t: 'bare-connect'; port: number; count: number } | { t: 'reset' } | { t: 'stats' } | { t: 'stop' };
export type AgentsEvent = { t: 'ready'; nodeIds: string[] } | { t: 'bare-connected' } | { t: 'reset' } | { t: 'stats'; received: number; bytes: number; latencies: number[] } | { t: 'stopped' };

const agents: AgentHandle[] = [];
let received = 0;
let bytes = 0;
let latencies: number[] = [];
const reply = (e: AgentsEvent) => process.send!(e);

/** The payload as the plugin would use it: bytes either way (base64 decoded for the JSON form). */
function bodyBytes(body: unknown): number {
  return Buffer.isBuffer(body) ? body.length : Buffer.from(String(body), 'base64').length;
}

process.on('message', async (cmd: AgentsCommand) => {
  switch (cmd.t) {
    case 'start': {
      for (let i = 0; i < cmd.count; i++) {
        const config = AgentConfig.parse({ controller: cmd.url, name: `${cmd.prefix}-${i}`, host: '127.0.0.1', port: 0, address: '127.0.0.1', dataDir: join(cmd.dir, `agent-${i}`), plugins: {} });
        const a = await startAgent(config, { log: createLog('agent', 'error'), joinToken: cmd.token });
        a.channels.onMessage('bench', (_node, type, msg) => {
          const m = msg as { sentAt?: number; body: unknown };
          received++;
          bytes += bodyBytes(m.body);
          if (type === 'push') latencies.push(monoMs() - m.sentAt!);
        });
        agents.push(a);
      }
      return reply({ t: 'ready', nodeIds: agents.map((a) => a.nodeId) });
    }
    case 'bare-connect': {
      // The peer's clients: plain ws connections reading the send time from the first 8 bytes.
      await Promise.all(
        Array.from({ length: cmd.count }, () => {
          const ws = new WebSocket(`ws://127.0.0.1:${cmd.port}/bare`);
          ws.on('message', (data: Buffer) => {
            received++;
            bytes += data.length - 8;
            latencies.push(monoMs() - data.readDoubleBE(0));
          });
          return new Promise((resolve, reject) => {
            ws.once('open', resolve);
            ws.once('error', reject);
          });
        }),
      );
      return reply({ t: 'bare-connected' });
    }
    case 'reset':
      received = 0;
      bytes = 0;
      latencies = [];
      return reply({ t: 'reset' });
    case 'stats':
      return reply({ t: 'stats', received, bytes, latencies });
    case 'stop':
      for (const a of agents) await a.stop();
      reply({ t: 'stopped' });
      process.exit(0);
  }
});
