/** Client commands for enrollment and the fleet: token, nodes, node, status, plugins. */
import { readFile } from 'node:fs/promises';
import { labels, UsageError, wholeNumber } from './args.ts';
import { call } from './client.ts';
import type { Command } from './command.ts';
import { ago, iso, out, table } from './format.ts';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const id = (v: string) => encodeURIComponent(v);

export const adminCommands: Command[] = [
  {
    path: ['token', 'create'],
    summary: 'create a join token for enrolling agents (printed once)',
    client: true,
    flags: {
      ttl: { type: 'string', value: 'DURATION', help: 'how long it is valid, 1m to 365d: 10m, 24h, 7d (default 24h)' },
      uses: { type: 'string', value: 'N', help: 'how many enrollments it allows (default 1)' },
      labels: { type: 'string', value: 'k=v,...', help: 'labels given to nodes enrolled with it' },
    },
    run: async ({ values, client, json }) => {
      const r = await call(client, 'POST', '/api/v1/tokens', { ttl: str(values.ttl) ?? '24h', uses: values.uses !== undefined ? wholeNumber(String(values.uses), '--uses', 1) : 1, labels: labels(str(values.labels)) });
      out(json, r, () => `${r.token}\n(expires ${iso(r.expiresAt)}, ${r.usesLeft} use(s); id ${r.id})`);
    },
  },
  {
    path: ['token', 'list'],
    summary: 'list join tokens (ids and state, never the tokens themselves)',
    client: true,
    run: async ({ client, json }) => {
      const r = await call(client, 'GET', '/api/v1/tokens');
      out(json, r, () => table(r.tokens.map((t: any) => ({ ...t, expiresAt: iso(t.expiresAt) })), ['id', 'state', 'usesLeft', 'expiresAt']));
    },
  },
  {
    path: ['token', 'revoke'],
    args: ['ID'],
    summary: 'revoke a join token so it can no longer enroll nodes',
    client: true,
    run: async ({ positionals: [tokenId], client, json }) => {
      const r = await call(client, 'DELETE', `/api/v1/tokens/${id(tokenId)}`);
      out(json, r, () => `revoked ${r.revoked}`);
    },
  },
  {
    path: ['nodes'],
    summary: 'list nodes with state, last heartbeat and plugin states',
    client: true,
    run: async ({ client, json }) => {
      const r = await call(client, 'GET', '/api/v1/nodes');
      out(json, r, () =>
        table(
          r.nodes.map((n: any) => ({ ...n, heartbeat: ago(n.lastHeartbeat), plugins: (n.plugins ?? []).map((p: any) => `${p.name}:${p.state}`).join(',') })),
          ['id', 'name', 'state', 'address', 'heartbeat', 'plugins'],
        ),
      );
    },
  },
  {
    path: ['node', 'delete'],
    args: ['ID'],
    summary: 'delete a node by id or name (revokes its credential)',
    client: true,
    run: async ({ positionals: [nodeId], client, json }) => {
      const r = await call(client, 'DELETE', `/api/v1/nodes/${id(nodeId)}`);
      out(json, r, () => `deleted ${r.deleted}; its credential no longer works`);
    },
  },
  {
    path: ['status'],
    summary: 'controller status: version, nodes up/down, plugins, webhook outbox',
    client: true,
    run: async ({ client, json }) => {
      const r = await call(client, 'GET', '/api/v1/status');
      out(json, r, () =>
        [
          `version ${r.version}`,
          `nodes: ${r.nodes.up} up, ${r.nodes.down} down, ${r.nodes.total} total (${r.link.connected} connected)`,
          `plugins: ${r.plugins.map((p: any) => `${p.name}:${p.state}${p.error ? ` (${p.error})` : ''}`).join(', ') || '(none)'}`,
          `webhook outbox: ${r.outbox.pending} pending`,
        ].join('\n'),
      );
    },
  },
  {
    path: ['plugins', 'list'],
    summary: "list the controller's plugins and their state",
    client: true,
    run: async ({ client, json }) => {
      const r = await call(client, 'GET', '/api/v1/plugins');
      out(json, r, () => table(r.plugins, ['name', 'state', 'error']));
    },
  },
  {
    path: ['plugins', 'push'],
    args: ['NAME', 'FILE'],
    summary: "set a plugin's config from a JSON file; the controller validates it and pushes it to agents",
    details: 'Values shown as "***" by the API (secrets) keep their stored value when pushed back.',
    client: true,
    run: async ({ positionals: [plugin, file], client, json }) => {
      let config: unknown;
      try {
        config = JSON.parse(await readFile(file, 'utf8'));
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new UsageError(e.code ? `cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code}` : `${file} is not valid JSON: ${e.message}`);
      }
      const r = await call(client, 'PUT', `/api/v1/plugins/${id(plugin)}/config`, { config });
      out(json, r, () => `config for ${plugin} applied and pushed to agents`);
    },
  },
];
