import { readFile } from 'node:fs/promises';
import { parse, labels, UsageError } from './cli/args.ts';
import { call, type ClientOpts } from './cli/client.ts';
import { runAgent, runController, runEmbedded } from './cli/run-processes.ts';
import { loadAgentConfig } from '../agent/config.ts';
import { openAgentState } from '../agent/state.ts';
import { join } from '../agent/join.ts';
import { detectAddress } from '../agent/main.ts';
import { Identity } from '../controller/identity.ts';

const HELP = `outpost — agent for edge nodes and the controller that leads them

usage: outpost <command> [options]

  start                         controller + local agent in one process (npm start)
  controller [--config FILE]    run a controller
  agent [--config FILE]         run an agent (join first)
  agent join --controller URL --token T [--config FILE] [--name N] [--labels k=v,...]
  token create [--ttl 24h] [--uses N] [--labels k=v,...]
  token list | token revoke ID
  nodes                         list nodes
  node delete ID                delete a node (revokes its credential)
  status                        controller status
  plugins push NAME FILE        set a plugin's config (JSON file) and push it to agents
  webhooks add --url URL [--events a,b] [--secret S] | webhooks list | webhooks delete ID
  admin-token rotate --data DIR replace the admin token (run on the controller host)

Client commands take --controller URL (env OUTPOST_CONTROLLER, default http://127.0.0.1:7070),
--token T (env OUTPOST_ADMIN_TOKEN) and --json for machine-readable output.
Every command takes --help.`;

const clientOptions = {
  controller: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function client(values: { controller?: string; token?: string }): ClientOpts {
  return { controller: values.controller ?? process.env.OUTPOST_CONTROLLER ?? 'http://127.0.0.1:7070', token: values.token ?? process.env.OUTPOST_ADMIN_TOKEN };
}

function table(rows: Array<Record<string, unknown>>, cols: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

function out(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write((json ? JSON.stringify(data, null, 2) : human()) + '\n');
}

const ago = (ts: number | null) => (ts ? `${Math.round((Date.now() - ts) / 1000)}s ago` : 'never');

async function main(argv: string[]): Promise<void> {
  const [cmd, sub, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP + '\n');
      return;
    case 'start': {
      const u = 'outpost start [--data DIR] [--port 7070] [--agent-port 7071] [--host 0.0.0.0]';
      const { values } = parse(argv.slice(1), { data: { type: 'string' }, port: { type: 'string' }, 'agent-port': { type: 'string' }, host: { type: 'string' } }, u);
      if (values.help) return void process.stdout.write(`usage: ${u}\n`);
      return runEmbedded({ dataDir: values.data ?? './data', port: num(values.port ?? '7070', '--port'), agentPort: num(values['agent-port'] ?? '7071', '--agent-port'), host: values.host ?? '0.0.0.0' });
    }
    case 'controller': {
      const u = 'outpost controller [--config FILE] [--port N] [--data DIR]';
      const { values } = parse(argv.slice(1), { config: { type: 'string' }, port: { type: 'string' }, data: { type: 'string' } }, u);
      if (values.help) return void process.stdout.write(`usage: ${u}\n`);
      return runController(values.config, { ...(values.port ? { port: num(values.port, '--port') } : {}), ...(values.data ? { dataDir: values.data } : {}) });
    }
    case 'agent': {
      if (sub === 'join') {
        const u = 'outpost agent join --controller URL --token T [--config FILE] [--name N] [--labels k=v,...] [--data DIR]';
        const { values } = parse(rest, { controller: { type: 'string' }, token: { type: 'string' }, config: { type: 'string' }, name: { type: 'string' }, labels: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } }, u);
        if (values.help) return void process.stdout.write(`usage: ${u}\n`);
        const token = values.token ?? process.env.OUTPOST_JOIN_TOKEN;
        if (!values.controller) throw new UsageError(`--controller is required\nusage: ${u}`);
        if (!token) throw new UsageError(`--token is required\nusage: ${u}`);
        const config = await loadAgentConfig(values.config, { ...(values.data ? { dataDir: values.data } : {}), ...(values.name ? { name: values.name } : {}) });
        const state = await openAgentState(config.dataDir);
        if (state.data.credential) {
          out(values.json, { nodeId: state.data.nodeId, alreadyJoined: true }, () => `already joined as ${state.data.nodeId} (state in ${config.dataDir}); delete the node and its state dir to join again`);
          return;
        }
        const { nodeId } = await join(state, { controller: values.controller, token, name: config.name, labels: { ...config.labels, ...labels(values.labels) }, address: config.address ?? detectAddress() });
        out(values.json, { nodeId }, () => `joined as ${nodeId}; credential stored in ${config.dataDir}/state.json (0600)`);
        return;
      }
      const u = 'outpost agent [--config FILE] [--port N] [--data DIR]';
      const { values } = parse(argv.slice(1), { config: { type: 'string' }, port: { type: 'string' }, data: { type: 'string' } }, u);
      if (values.help) return void process.stdout.write(`usage: ${u}\n`);
      return runAgent(values.config, { ...(values.port ? { port: num(values.port, '--port') } : {}), ...(values.data ? { dataDir: values.data } : {}) });
    }
    case 'token': {
      if (sub === 'create') {
        const u = 'outpost token create [--ttl 24h] [--uses N] [--labels k=v,...]';
        const { values } = parse(rest, { ...clientOptions, ttl: { type: 'string' }, uses: { type: 'string' }, labels: { type: 'string' } }, u);
        if (values.help) return void process.stdout.write(`usage: ${u}\n`);
        const r = await call(client(values), 'POST', '/api/v1/tokens', { ttl: values.ttl ?? '24h', uses: values.uses ? num(values.uses, '--uses') : 1, labels: labels(values.labels) });
        out(values.json, r, () => `${r.token}\n(expires ${new Date(r.expiresAt).toISOString()}, ${r.usesLeft} use(s); id ${r.id})`);
        return;
      }
      if (sub === 'list') {
        const { values } = parse(rest, clientOptions, 'outpost token list');
        if (values.help) return void process.stdout.write('usage: outpost token list\n');
        const r = await call(client(values), 'GET', '/api/v1/tokens');
        out(values.json, r, () => table(r.tokens.map((t: any) => ({ ...t, expiresAt: new Date(t.expiresAt).toISOString() })), ['id', 'state', 'usesLeft', 'expiresAt']));
        return;
      }
      if (sub === 'revoke') {
        const { values, positionals } = parse(rest, clientOptions, 'outpost token revoke ID');
        if (values.help) return void process.stdout.write('usage: outpost token revoke ID\n');
        if (!positionals[0]) throw new UsageError('token id required\nusage: outpost token revoke ID');
        const r = await call(client(values), 'DELETE', `/api/v1/tokens/${encodeURIComponent(positionals[0])}`);
        out(values.json, r, () => `revoked ${positionals[0]}`);
        return;
      }
      throw new UsageError('usage: outpost token create|list|revoke');
    }
    case 'nodes': {
      const { values } = parse(argv.slice(1), clientOptions, 'outpost nodes');
      if (values.help) return void process.stdout.write('usage: outpost nodes [--json]\n');
      const r = await call(client(values), 'GET', '/api/v1/nodes');
      out(values.json, r, () => table(r.nodes.map((n: any) => ({ ...n, heartbeat: ago(n.lastHeartbeat), plugins: n.plugins.map((p: any) => `${p.name}:${p.state}`).join(',') })), ['id', 'name', 'state', 'address', 'heartbeat', 'plugins']));
      return;
    }
    case 'node': {
      const { values, positionals } = parse(rest, clientOptions, 'outpost node delete ID');
      if (sub !== 'delete' || values.help || !positionals[0]) {
        if (values.help) return void process.stdout.write('usage: outpost node delete ID\n');
        throw new UsageError('usage: outpost node delete ID');
      }
      const r = await call(client(values), 'DELETE', `/api/v1/nodes/${encodeURIComponent(positionals[0])}`);
      out(values.json, r, () => `deleted ${r.deleted}; its credential no longer works`);
      return;
    }
    case 'status': {
      const { values } = parse(argv.slice(1), clientOptions, 'outpost status');
      if (values.help) return void process.stdout.write('usage: outpost status [--json]\n');
      const r = await call(client(values), 'GET', '/api/v1/status');
      out(values.json, r, () => `version ${r.version}\nnodes: ${r.nodes.up} up, ${r.nodes.down} down, ${r.nodes.total} total (${r.link.connected} connected)\nplugins: ${r.plugins.map((p: any) => `${p.name}:${p.state}`).join(', ')}\nwebhook outbox: ${r.outbox.pending} pending`);
      return;
    }
    case 'plugins': {
      const u = 'outpost plugins push NAME FILE';
      const { values, positionals } = parse(rest, clientOptions, u);
      if (values.help) return void process.stdout.write(`usage: ${u}\n`);
      if (sub !== 'push' || positionals.length !== 2) throw new UsageError(`usage: ${u}`);
      let config: unknown;
      try {
        config = JSON.parse(await readFile(positionals[1], 'utf8'));
      } catch (err) {
        throw new UsageError(`cannot read JSON from ${positionals[1]}: ${(err as Error).message}`);
      }
      const r = await call(client(values), 'PUT', `/api/v1/plugins/${encodeURIComponent(positionals[0])}/config`, { config });
      out(values.json, r, () => `config for ${positionals[0]} applied and pushed to agents`);
      return;
    }
    case 'webhooks': {
      if (sub === 'add') {
        const u = 'outpost webhooks add --url URL [--events node.down,node.up] [--secret S]';
        const { values } = parse(rest, { ...clientOptions, url: { type: 'string' }, events: { type: 'string' }, secret: { type: 'string' }, description: { type: 'string' } }, u);
        if (values.help) return void process.stdout.write(`usage: ${u}\n`);
        if (!values.url) throw new UsageError(`--url is required\nusage: ${u}`);
        const r = await call(client(values), 'POST', '/api/v1/webhooks', { url: values.url, events: values.events ? values.events.split(',').map((s) => s.trim()) : undefined, secret: values.secret, description: values.description });
        out(values.json, r, () => `webhook ${r.id} → ${r.url} for ${r.events.join(', ')}\nsigning secret (shown once): ${r.secret}`);
        return;
      }
      if (sub === 'list') {
        const { values } = parse(rest, clientOptions, 'outpost webhooks list');
        if (values.help) return void process.stdout.write('usage: outpost webhooks list [--json]\n');
        const r = await call(client(values), 'GET', '/api/v1/webhooks');
        out(values.json, r, () => table(r.webhooks.map((w: any) => ({ ...w, events: w.events.join(',') })), ['id', 'url', 'events']));
        return;
      }
      if (sub === 'delete') {
        const { values, positionals } = parse(rest, clientOptions, 'outpost webhooks delete ID');
        if (values.help) return void process.stdout.write('usage: outpost webhooks delete ID\n');
        if (!positionals[0]) throw new UsageError('usage: outpost webhooks delete ID');
        const r = await call(client(values), 'DELETE', `/api/v1/webhooks/${encodeURIComponent(positionals[0])}`);
        out(values.json, r, () => `deleted ${r.deleted}`);
        return;
      }
      throw new UsageError('usage: outpost webhooks add|list|delete');
    }
    case 'admin-token': {
      const u = 'outpost admin-token rotate --data DIR';
      const { values } = parse(rest, { data: { type: 'string' }, json: { type: 'boolean' } }, u);
      if (values.help) return void process.stdout.write(`usage: ${u}\n`);
      if (sub !== 'rotate' || !values.data) throw new UsageError(`usage: ${u}`);
      const { identity } = await Identity.open(values.data);
      const token = await identity.rotateAdminToken();
      out(values.json, { token }, () => `new admin token (shown once): ${token}\nrestart the controller for running sessions to pick it up`);
      return;
    }
    default:
      throw new UsageError(`unknown command "${cmd}"; see outpost --help`);
  }
}

function num(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number, got "${v}"`);
  return n;
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`outpost: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
