import { join } from 'node:path';
import type { ControllerHandle } from '../../controller/main.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { startAgent, type AgentHandle } from '../../agent/main.ts';
import { openAgentState } from '../../agent/state.ts';
import { detectCapabilities } from '../../agent/capabilities.ts';
import { createLog } from '../../plugins/sdk/log.ts';

// The controller's code (hyper-express, dashboard...) loads only in processes that run one: an agent
// alone stays ~5 MB smaller (docs/benchmarks.md, agent-footprint).
async function controllerModules() {
  const [{ loadControllerConfig }, { startController }] = await Promise.all([import('../../controller/config.ts'), import('../../controller/main.ts')]);
  return { loadControllerConfig, startController };
}

function onStop(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    createLog('outpost').info({ signal: sig }, 'stopping');
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

export function announceAdminToken(c: ControllerHandle): void {
  if (!c.newAdminToken) return;
  process.stdout.write(`\nAdmin token (shown once; store it now): ${c.newAdminToken}\n`);
}

export async function runController(configFile: string | undefined, overrides: Record<string, unknown>): Promise<void> {
  const { loadControllerConfig, startController } = await controllerModules();
  const config = await loadControllerConfig(configFile, overrides);
  const c = await startController(config);
  process.stdout.write(`Outpost controller ${c.url}  (dashboard: ${c.url}/)\n`);
  announceAdminToken(c);
  onStop(() => c.stop());
}

export async function runAgent(configFile: string | undefined, overrides: Record<string, unknown>): Promise<void> {
  const config = await loadAgentConfig(configFile, overrides);
  const a = await startAgent(config);
  process.stdout.write(`Outpost agent ${a.nodeId} serving on port ${a.port}\n`);
  onStop(() => a.stop());
}

const LINK_WAIT_MS = 15_000;

async function linkedWithin(agent: AgentHandle, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([agent.link.ready.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * dns-sync with nothing external: the dry-run provider records what it would write for one service,
 * and the local node declares itself (its own config) as serving three ISP lines at loopback.
 */
const EMBEDDED_DNS = {
  controller: { providers: { 'dry-run': { type: 'dry-run' } }, services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'dry-run' }] },
  agent: { self: { ISPs: ['default', 'CT', 'CU'], address: '127.0.0.1' } },
};

/** `npm start`: a controller and a local agent in one process, data under ./data, nothing external needed. */
export async function runEmbedded(opts: { dataDir: string; port: number; agentPort: number; host: string }): Promise<void> {
  // Every plugin that can run here: app-store on the node only when a Docker Engine socket exists;
  // comet's gateway listens on 127.0.0.1 (goim's ports 3101/3102) so a first start exposes nothing.
  const docker = detectCapabilities().docker?.available === true;
  const { loadControllerConfig, startController } = await controllerModules();
  const config = await loadControllerConfig(undefined, { dataDir: join(opts.dataDir, 'controller'), port: opts.port, host: opts.host, plugins: { 'server-stats': {}, prober: {}, 'app-store': {}, 'dns-sync': EMBEDDED_DNS.controller, comet: {}, jobs: {} } });
  const c = await startController(config);
  const agentPlugins: Record<string, unknown> = { 'server-stats': {}, prober: {}, ...(docker ? { 'app-store': {} } : {}), 'dns-sync': EMBEDDED_DNS.agent, comet: {}, jobs: {} };
  const agentConfig = await loadAgentConfig(undefined, { dataDir: join(opts.dataDir, 'agent'), port: opts.agentPort, host: opts.host, controller: c.url, name: 'local', plugins: agentPlugins });
  let joinToken: string | undefined;
  const state = await openAgentState(agentConfig.dataDir);
  if (!state.data.credential) {
    // First start: enroll the embedded agent with a one-use token nobody else ever sees.
    joinToken = (await c.tokens.create({ ttlMs: 60_000, uses: 1, labels: { embedded: 'true' } })).token;
  } else if (state.data.controller !== c.url) {
    // The agent links to the controller it joined; started on another --port, that is this one now.
    await state.update((d) => {
      d.controller = c.url;
    });
  }
  const agent: AgentHandle = await startAgent(agentConfig, { joinToken, local: true });
  // The banner below invites requests to the local node: print it once the node is linked, so the
  // first of them does not find it down (bounded: a link that fails says why in the log).
  if (!(await linkedWithin(agent, LINK_WAIT_MS))) createLog('outpost').warn({ waitedMs: LINK_WAIT_MS }, 'the local agent has not linked to the controller yet; requests to node local fail until it does');
  process.stdout.write(`\nOutpost is running.\n  Dashboard and REST API: ${c.url}/\n  Local agent API:        http://127.0.0.1:${agent.port}/v1/monitor\n  Data:                   ${opts.dataDir}\n`);
  if (c.newAdminToken) announceAdminToken(c);
  else process.stdout.write(`  Admin token: printed at first start (lost it? \`outpost admin-token rotate --data ${join(opts.dataDir, 'controller')}\`)\n`);
  onStop(async () => {
    await agent.stop();
    await c.stop();
  });
}
