/**
 * A real controller and real agents started inside the test process (startController / startAgent
 * on loopback, port 0, real link over WebSocket), for tests that need a host's own parts, e.g. its
 * channel hub, the way the plugin runner sees them.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startController, type ControllerHandle } from '../../controller/main.ts';
import { ControllerConfig } from '../../controller/config.ts';
import { startAgent, type AgentHandle } from '../../agent/main.ts';
import { AgentConfig } from '../../agent/config.ts';
import { createLog } from '../../plugins/sdk/log.ts';
import { http, tempDir, type ApiResponse } from './cluster.ts';

export interface LocalController extends ControllerHandle {
  adminToken: string;
  api<T = any>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

export interface LocalAgent extends AgentHandle {
  close(): Promise<void>;
}

const quiet = () => createLog('test', process.env.OUTPOST_LOG_LEVEL ?? 'silent');

export async function localController(over: Record<string, unknown> = {}): Promise<LocalController> {
  const dir = await tempDir('outpost-local-controller-');
  const adminToken = `opa_test_${randomBytes(12).toString('hex')}`;
  const config = ControllerConfig.parse({ host: '127.0.0.1', port: 0, dataDir: dir, heartbeat: { intervalMs: 200, downAfter: 3, upAfter: 2 }, plugins: {}, ...over });
  const h = await startController(config, { log: quiet(), adminToken });
  return Object.assign(h, {
    adminToken,
    api: <T>(method: string, path: string, body?: unknown) => http<T>(method, h.url + path, { token: adminToken, body }),
    async close() {
      await h.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

export async function localAgent(c: LocalController, over: Record<string, unknown> = {}): Promise<LocalAgent> {
  const dir = await tempDir('outpost-local-agent-');
  const t = await c.api('POST', '/api/v1/tokens', { ttl: '10m', uses: 1 });
  if (t.status !== 201) throw new Error(`token create failed: ${t.text}`);
  const config = AgentConfig.parse({
    controller: c.url,
    name: `local-${randomBytes(3).toString('hex')}`,
    host: '127.0.0.1',
    port: 0,
    address: '127.0.0.1',
    dataDir: join(dir, 'agent'),
    plugins: {},
    link: { backoff: { baseDelay: 0.1, factor: 1.5, jitter: 0.2, maxDelay: 1 } },
    ...over,
  });
  const h = await startAgent(config, { log: quiet(), joinToken: t.body.token });
  return Object.assign(h, {
    async close() {
      await h.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}
