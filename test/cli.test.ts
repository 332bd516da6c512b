/** The real `outpost` CLI against a real controller: commands, --json, --help, and one-line errors. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT, TestController, TestAgent, tempDir, until } from './helpers/cluster.ts';
import { runCommands } from '../scripts/cli/commands-run.ts';
import { adminCommands } from '../scripts/cli/commands-admin.ts';
import { webhookCommands } from '../scripts/cli/commands-webhooks.ts';
import { CLIENT_FLAGS } from '../scripts/cli/command.ts';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `outpost ...args` with a clean environment (no inherited controller or token settings). */
function outpost(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OUTPOST_'))) as Record<string, string>;
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/outpost.ts'), ...args], { cwd: ROOT, env: { ...base, OUTPOST_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The error contract: exit non-zero, exactly one line on stderr starting "outpost: ", no stack trace, nothing on stdout. */
function assertOneLineError(r: CliResult, re: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what}: exit code`);
  assert.equal(r.stdout, '', `${what}: stdout should be empty`);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^outpost: /, what);
  assert.match(lines[0], re, what);
  assert.doesNotMatch(r.stderr, /\s+at\s.+:\d+:\d+/, `${what}: no stack trace`);
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let c: TestController;
let agent: TestAgent;
let env: Record<string, string>;

before(async () => {
  c = await TestController.start();
  agent = await TestAgent.start(c, { name: 'cli-node' });
  env = { OUTPOST_CONTROLLER: c.url, OUTPOST_ADMIN_TOKEN: c.adminToken };
});

after(async () => {
  await agent?.stop();
  await c?.stop();
});

test('--help for every command exits 0 and lists all its flags', async () => {
  const all = [...runCommands, ...adminCommands, ...webhookCommands];
  const top = await outpost(['--help']);
  assert.equal(top.code, 0);
  for (const cmd of all) assert.ok(top.stdout.includes(cmd.path.join(' ')), `top help lists ${cmd.path.join(' ')}`);
  // Spawned a few at a time: each is a full node + tsx start.
  for (let i = 0; i < all.length; i += 6) {
    await Promise.all(
      all.slice(i, i + 6).map(async (cmd) => {
        const r = await outpost([...cmd.path, '--help']);
        const name = cmd.path.join(' ');
        assert.equal(r.code, 0, `${name} --help: ${r.stderr}`);
        assert.equal(r.stderr, '');
        assert.ok(r.stdout.startsWith(`usage: outpost ${name}`), `${name} --help starts with its usage:\n${r.stdout}`);
        for (const flag of Object.keys({ ...(cmd.flags ?? {}), ...(cmd.client ? CLIENT_FLAGS : {}) })) assert.ok(r.stdout.includes(`--${flag}`), `${name} --help mentions --${flag}`);
      }),
    );
  }
  const group = await outpost(['webhooks', '-h']);
  assert.equal(group.code, 0);
  assert.match(group.stdout, /webhooks add[\s\S]*webhooks list[\s\S]*webhooks delete/);
});

test('token create, list and revoke; --json parses', async () => {
  const [created, human] = await Promise.all([outpost(['token', 'create', '--ttl', '1h', '--uses', '2', '--labels', 'zone=a', '--json'], env), outpost(['token', 'create'], env)]);
  assert.equal(created.code, 0, created.stderr);
  const tok = JSON.parse(created.stdout);
  assert.match(tok.token, /^opj_/);
  assert.equal(tok.usesLeft, 2);

  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout.split('\n')[0], /^opj_\S+$/, 'the token comes first, alone on its line');

  const [listedRun, table] = await Promise.all([outpost(['token', 'list', '--json'], env), outpost(['token', 'list'], env)]);
  const listed = JSON.parse(listedRun.stdout);
  const entry = listed.tokens.find((t: any) => t.id === tok.id);
  assert.ok(entry, 'created token is listed');
  assert.ok(!JSON.stringify(listed).includes(tok.token), 'the token itself is never listed');
  assert.match(table.stdout, /^ID\s+STATE/);
  assert.ok(table.stdout.includes(tok.id));

  const [revoked, unknown] = await Promise.all([outpost(['token', 'revoke', tok.id], env), outpost(['token', 'revoke', 'tok_nope'], env)]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, new RegExp(`revoked ${tok.id}`));
  assertOneLineError(unknown, /HTTP 404: token tok_nope not found/, 'revoke unknown');
  const after = JSON.parse((await outpost(['token', 'list', '--json'], env)).stdout);
  assert.notEqual(after.tokens.find((t: any) => t.id === tok.id)?.state, entry.state);
});

test('nodes and status show the joined agent', async () => {
  await until('agent up', async () => (await c.node(agent.nodeId))?.state === 'up');
  const [nodes, table, status, human] = await Promise.all([outpost(['nodes', '--json'], env), outpost(['nodes'], env), outpost(['status', '--json'], env), outpost(['status'], env)]);
  assert.equal(nodes.code, 0, nodes.stderr);
  const n = JSON.parse(nodes.stdout).nodes.find((x: any) => x.id === agent.nodeId);
  assert.equal(n.name, 'cli-node');
  assert.equal(n.state, 'up');
  assert.match(table.stdout, /cli-node\s+up\s+127\.0\.0\.1/);

  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.ok(s.nodes.up >= 1);
  assert.equal(typeof s.outbox.pending, 'number');
  assert.match(human.stdout, /nodes: \d+ up, \d+ down, \d+ total/);
  assert.match(human.stdout, /server-stats:running/);
});

test('plugins push applies a config file; a bad one fails with the field named', async () => {
  const dir = await tempDir('outpost-cli-');
  const good = join(dir, 'stats.json');
  await writeFile(good, JSON.stringify({ interval: 2, diskInterval: 30 }));
  const r = await outpost(['plugins', 'push', 'server-stats', good, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).config.interval, 2);
  assert.equal((await c.api('GET', '/api/v1/plugins/server-stats/config')).body.config.interval, 2);

  const bad = join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ interval: 'often' }));
  const broken = join(dir, 'broken.json');
  await writeFile(broken, '{"interval":');
  const [invalid, notJson, missing, noFile, list] = await Promise.all([
    outpost(['plugins', 'push', 'server-stats', bad], env),
    outpost(['plugins', 'push', 'server-stats', broken], env),
    outpost(['plugins', 'push', 'server-stats', join(dir, 'missing.json')], env),
    outpost(['plugins', 'push', 'server-stats'], env),
    outpost(['plugins', 'list', '--json'], env),
  ]);
  assertOneLineError(invalid, /HTTP 400: .*interval/, 'invalid plugin config');
  assertOneLineError(notJson, /broken\.json is not valid JSON/, 'broken JSON file');
  assertOneLineError(missing, /cannot read .*missing\.json: no such file/, 'missing file');
  assertOneLineError(noFile, /missing FILE/, 'missing FILE');
  assert.ok(JSON.parse(list.stdout).plugins.some((p: any) => p.name === 'server-stats'));
});

test('webhooks add, list, delete and the delivery log', async () => {
  const secret = 'cli-secret-0123456789abcdef';
  const added = await outpost(['webhooks', 'add', '--url', 'http://127.0.0.1:9/hook', '--events', 'node.down,node.up', '--secret', secret, '--description', 'cli test', '--json'], env);
  assert.equal(added.code, 0, added.stderr);
  const wh = JSON.parse(added.stdout);
  assert.deepEqual(wh.events, ['node.down', 'node.up']);
  assert.equal(wh.secret, secret, 'the secret is shown once, at creation');

  const [listed, human, generated, dl, byHook, retryUnknown, badState, ftp, unknownEvent, bigSecret] = await Promise.all([
    outpost(['webhooks', 'list', '--json'], env),
    outpost(['webhooks', 'list'], env),
    outpost(['webhooks', 'add', '--url', 'http://127.0.0.1:9/other'], env),
    outpost(['deliveries', '--state', 'pending', '--json'], env),
    outpost(['deliveries', '--webhook', wh.id, '--limit', '5'], env),
    outpost(['deliveries', 'retry', 'dl_nope'], env),
    outpost(['deliveries', '--state', 'lost'], env),
    outpost(['webhooks', 'add', '--url', 'ftp://127.0.0.1/x'], env),
    outpost(['webhooks', 'add', '--url', 'http://127.0.0.1/x', '--events', 'node.exploded'], env),
    outpost(['webhooks', 'add', '--url', 'http://127.0.0.1/x', '--secret', 'x'.repeat(300)], env),
  ]);
  const body = JSON.parse(listed.stdout);
  assert.ok(body.webhooks.some((w: any) => w.id === wh.id && w.description === 'cli test'));
  assert.ok(!listed.stdout.includes(secret));
  assert.ok(human.stdout.includes(wh.id) && !human.stdout.includes(secret));
  assert.match(human.stdout, /events: .*node\.down/);
  assert.equal(generated.code, 0, generated.stderr);
  assert.match(generated.stdout, /signing secret \(shown once\): \S{16,}/);
  assert.equal(dl.code, 0, dl.stderr);
  assert.ok(Array.isArray(JSON.parse(dl.stdout).deliveries));
  assert.equal(byHook.code, 0, byHook.stderr);
  assertOneLineError(retryUnknown, /HTTP 404: delivery dl_nope not found/, 'retry unknown delivery');
  assertOneLineError(badState, /--state must be one of pending, delivered, dead/, 'bad state');
  assertOneLineError(ftp, /HTTP 400: url must use http or https, not ftp/, 'non-http url');
  assertOneLineError(unknownEvent, /unknown event name\(s\): "node.exploded"/, 'unknown event');
  assertOneLineError(bigSecret, /secret must be 16 to 256 characters/, 'oversized secret');

  const ping = await outpost(['webhooks', 'test', '--message', 'hello from the cli', '--json'], env);
  assert.equal(ping.code, 0, ping.stderr);
  assert.equal(JSON.parse(ping.stdout).data.message, 'hello from the cli');

  const del = await outpost(['webhooks', 'delete', wh.id, '--json'], env);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(JSON.parse(del.stdout).deleted, wh.id);
  assertOneLineError(await outpost(['webhooks', 'delete', wh.id], env), /HTTP 404/, 'delete twice');
});

test('usage mistakes, an unreachable controller and a wrong admin token: one line, non-zero, no stack trace', async () => {
  const usage: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['token'], /"token" needs a subcommand: create, list, revoke/],
    [['token', 'mint'], /unknown subcommand "token mint"/],
    [['webhooks', 'add'], /--url is required/],
    [['agent', 'join', '--token', 'opj_x.y'], /--controller is required/],
    [['agent', 'join', '--controller', c.url], /--token is required/],
    [['token', 'revoke'], /missing ID/],
    [['token', 'create', '--bogus'], /Unknown option '--bogus'/],
    [['token', 'create', '--uses', 'many'], /--uses must be a whole number/],
    [['nodes', 'extra'], /unexpected argument "extra"/],
    [['nodes', '--controller', 'not a url'], /--controller must be a URL/],
    [['controller', '--port', '99999'], /--port must be a port/],
    [['admin-token', 'rotate', '--data', '/nonexistent-outpost'], /not a controller data directory/],
  ];
  const results = await Promise.all(usage.map(([args]) => outpost(args, env)));
  usage.forEach(([args, re], i) => {
    assertOneLineError(results[i], re, args.join(' '));
    assert.equal(results[i].code, 2, `${args.join(' ')}: usage mistakes exit 2`);
  });

  const port = await closedPort();
  const [down, wrong, missing, badJoin, badConfig] = await Promise.all([
    outpost(['status'], { ...env, OUTPOST_CONTROLLER: `http://127.0.0.1:${port}` }),
    outpost(['nodes', '--token', 'opa_wrong_token'], env),
    outpost(['nodes'], { OUTPOST_CONTROLLER: c.url }),
    outpost(['agent', 'join', '--controller', c.url, '--token', 'opj_bogus.token', '--data', join(await tempDir('outpost-cli-'), 'agent')]),
    outpost(['controller', '--config', '/nonexistent-outpost/controller.json']),
  ]);
  assertOneLineError(down, new RegExp(`cannot reach controller at http://127.0.0.1:${port}: ECONNREFUSED`), 'unreachable controller');
  assert.equal(down.code, 1);
  assertOneLineError(wrong, /refused the admin token \(HTTP 401\)/, 'wrong admin token');
  assertOneLineError(missing, /admin token required: pass --token or set OUTPOST_ADMIN_TOKEN/, 'no admin token');
  assertOneLineError(badJoin, /enrollment refused/, 'bad join token');
  assertOneLineError(badConfig, /cannot read controller config/, 'missing controller config');
});
