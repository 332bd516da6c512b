/** Commands that run Outpost processes or act on local state: start, controller, agent, agent join, admin-token rotate. */
import { existsSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { labels, UsageError, wholeNumber } from './args.ts';
import { required, type Command, type Flags, type Invocation } from './command.ts';
import { out } from './format.ts';

// The controller and agent code (uWS, systeminformation, jose...) loads only for the command that
// needs it, so client commands and --help start fast.
const processes = () => import('./run-processes.ts');

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

function port(v: unknown, flag: string): number | undefined {
  if (typeof v !== 'string') return undefined;
  const n = wholeNumber(v, flag);
  if (n > 65535) throw new UsageError(`${flag} must be a port from 0 to 65535, got "${v}"`);
  return n;
}

/** --config, --port and --data of `controller` and `agent`; the flags override the config file. */
function daemonFlags(kind: 'controller' | 'agent', portHelp: string, dataHelp: string): Flags {
  return {
    config: { type: 'string', value: 'FILE', help: `${kind} config JSON (see configs/${kind}.json)` },
    port: { type: 'string', value: 'N', help: portHelp },
    data: { type: 'string', value: 'DIR', help: dataHelp },
  };
}

function daemonOverrides(values: Invocation['values']): Record<string, unknown> {
  return { ...(values.port !== undefined ? { port: port(values.port, '--port') } : {}), ...(values.data ? { dataDir: values.data } : {}) };
}

export const runCommands: Command[] = [
  {
    path: ['start'],
    summary: 'run a controller and a local agent in one process, data under ./data (npm start)',
    flags: {
      data: { type: 'string', value: 'DIR', help: 'data directory (default ./data)' },
      port: { type: 'string', value: 'N', help: 'controller port: REST, dashboard, link (default 7070)' },
      'agent-port': { type: 'string', value: 'N', help: "local agent's API port (default 7071)" },
      host: { type: 'string', value: 'ADDR', help: 'address to listen on (default 0.0.0.0)' },
    },
    run: async ({ values }) =>
      (await processes()).runEmbedded({ dataDir: str(values.data) ?? './data', port: port(values.port, '--port') ?? 7070, agentPort: port(values['agent-port'], '--agent-port') ?? 7071, host: str(values.host) ?? '0.0.0.0' }),
  },
  {
    path: ['controller'],
    summary: 'run a controller',
    details: 'Prints its URL, and the admin token once on first start. Flags override the config file.',
    flags: daemonFlags('controller', 'listen port (default 7070; 0 picks a free one)', 'data directory (default ./data/controller)'),
    run: async ({ values }) => (await processes()).runController(str(values.config), daemonOverrides(values)),
  },
  {
    path: ['agent'],
    summary: 'run an agent (after `outpost agent join`)',
    details: 'Enroll first: outpost agent join --help.',
    flags: daemonFlags('agent', 'local API port (default 7071)', 'state directory (default ./data/agent)'),
    run: async ({ values }) => (await processes()).runAgent(str(values.config), daemonOverrides(values)),
  },
  {
    path: ['agent', 'join'],
    summary: 'enroll this node with a controller using a join token; stores the credential (0600)',
    flags: {
      controller: { type: 'string', value: 'URL', help: 'controller base URL (required)' },
      token: { type: 'string', value: 'T', help: 'join token from `outpost token create` (or env OUTPOST_JOIN_TOKEN)' },
      config: { type: 'string', value: 'FILE', help: 'agent config JSON (name, labels, data dir)' },
      name: { type: 'string', value: 'N', help: 'node name (default from the config, else the host name)' },
      labels: { type: 'string', value: 'k=v,...', help: 'labels added to the node' },
      data: { type: 'string', value: 'DIR', help: 'state directory (default from the config)' },
      json: { type: 'boolean', help: 'print {"nodeId"} as JSON' },
    },
    run: async ({ values, json }) => {
      const controller = required(values, 'controller', 'agent join');
      const token = str(values.token) ?? process.env.OUTPOST_JOIN_TOKEN;
      if (!token) throw new UsageError('--token is required (or env OUTPOST_JOIN_TOKEN; see outpost agent join --help)');
      const [{ loadAgentConfig }, { openAgentState }, { join }, { detectAddress }] = await Promise.all([import('../../agent/config.ts'), import('../../agent/state.ts'), import('../../agent/join.ts'), import('../../agent/main.ts')]);
      const config = await loadAgentConfig(str(values.config), { ...(values.data ? { dataDir: values.data } : {}), ...(values.name ? { name: values.name } : {}) });
      const state = await openAgentState(config.dataDir);
      if (state.data.credential) {
        out(json, { nodeId: state.data.nodeId, alreadyJoined: true }, () => `already joined as ${state.data.nodeId} (state in ${config.dataDir}); delete the node and its state dir to join again`);
        return;
      }
      const { nodeId } = await join(state, { controller, token, name: config.name, labels: { ...config.labels, ...labels(str(values.labels)) }, address: config.address ?? detectAddress() });
      out(json, { nodeId }, () => `joined as ${nodeId}; credential stored in ${config.dataDir}/state.json (0600)`);
    },
  },
  {
    path: ['admin-token', 'rotate'],
    summary: "replace the controller's admin token (run on the controller host)",
    details: 'The old token stops working; a running controller on that data dir picks the new one up when restarted. With OUTPOST_STORE_URL set, rotates the token of the controllers sharing that database (DIR: any data dir of theirs), and they take it at once.',
    flags: {
      data: { type: 'string', value: 'DIR', help: "the controller's data directory (required)" },
      json: { type: 'boolean', help: 'print {"token"} as JSON' },
    },
    run: async ({ values, json }) => {
      const dir = required(values, 'data', 'admin-token rotate');
      const [{ Identity }, { openControllerStorage }, { StorageHealth }, { createLog }, { openStore }] = await Promise.all([
        import('../../controller/identity.ts'),
        import('../../runtime/storage/controller-storage.ts'),
        import('../../plugins/sdk/durable/health.ts'),
        import('../../plugins/sdk/log.ts'),
        import('../../plugins/sdk/store.ts'),
      ]);
      // With OUTPOST_STORE_URL set, the identity is the one in that database (shared by its controllers).
      const storage = await openControllerStorage({ kind: 'lowdb' }, dir, { health: new StorageHealth(), log: createLog('outpost', 'warn') });
      try {
        // Identity.open would create a new identity for a mistyped directory or an empty database; refuse instead.
        if (storage.kind === 'lowdb' && !existsSync(joinPath(dir, 'controller.json'))) throw new UsageError(`${dir} is not a controller data directory (no controller.json there)`);
        const known = await openStore<{ adminTokenHash?: string | null }>(dir, 'controller', {});
        await known.close();
        if (!known.data.adminTokenHash) throw new UsageError(`no controller has started on ${storage.where ?? dir} yet: there is no admin token to rotate`);
        const { identity } = await Identity.open(dir);
        const token = await identity.rotateAdminToken();
        out(json, { token }, () => `new admin token (shown once): ${token}\nrestart the controller${storage.kind === 'postgres' ? 's' : ''} for running sessions to pick it up`);
      } finally {
        await storage.close();
      }
    },
  },
];
