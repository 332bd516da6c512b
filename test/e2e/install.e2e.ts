import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { ROOT, TestController, tempDir, until, freePort } from '../helpers/cluster.ts';
import { sh } from './lib/netns.ts';

const SCRIPTS = ['scripts/install-agent.sh', 'test/e2e/run.sh', '.ci/run'];
/** What a release tarball holds: the runtime plus the install script and unit templates. */
const RELEASE_PATHS = ['agent', 'controller', 'runtime', 'plugins', 'configs', 'scripts/outpost.ts', 'scripts/outpost.mjs', 'scripts/cli', 'scripts/install-agent.sh', 'scripts/systemd', 'package.json', 'package-lock.json'];
const SERVICE_USER = 'outpost-e2e';


test('shell scripts are shellcheck clean', async () => {
  for (const f of SCRIPTS) {
    const r = await sh('shellcheck', ['--severity=style', join(ROOT, f)]);
    assert.equal(r.code, 0, `shellcheck ${f}:\n${r.stdout}${r.stderr}`);
  }
});

test('systemd units pass systemd-analyze verify', async () => {
  const dir = await tempDir('outpost-unit-');
  try {
    const prefix = join(dir, 'prefix');
    await mkdir(join(prefix, 'app/scripts'), { recursive: true });
    await mkdir(join(prefix, 'var'), { recursive: true });
    await writeFile(join(prefix, 'app/scripts/outpost.mjs'), '');
    const agentUnit = (await readFile(join(ROOT, 'scripts/systemd/outpost-agent.service'), 'utf8'))
      .replaceAll('@PREFIX@', prefix)
      .replaceAll('@NODE@', process.execPath)
      .replaceAll('@USER@', 'root');
    assert.ok(!/@[A-Z]+@/.test(agentUnit), 'every placeholder is filled by the installer');
    const controllerUnit = (await readFile(join(ROOT, 'scripts/systemd/outpost-controller.service'), 'utf8'))
      .replaceAll('/usr/bin/node', process.execPath)
      .replaceAll('/opt/outpost-controller/app', join(prefix, 'app'))
      .replaceAll('User=outpost', 'User=root');
    for (const [name, text] of [['outpost-agent.service', agentUnit], ['outpost-controller.service', controllerUnit]]) {
      const file = join(dir, name);
      await writeFile(file, text);
      const r = await sh('systemd-analyze', ['verify', file]);
      assert.equal(r.code, 0, `systemd-analyze verify ${name}:\n${r.stderr}`);
      // Unknown keys or bad values are only warnings for systemd: none may mention our unit.
      const complaints = (r.stdout + r.stderr).split('\n').filter((l) => l.includes(name));
      assert.deepEqual(complaints, [], `systemd-analyze complains about ${name}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('install-agent.sh rejects bad input with one clear line and a non-zero exit', async () => {
  const script = join(ROOT, 'scripts/install-agent.sh');
  const cases: Array<[string[], number, RegExp]> = [
    [['--token', 'opj_0123456789ab.secret'], 2, /--controller URL is required/],
    [['--controller', 'ftp://example.invalid', '--token', 'opj_0123456789ab.secret'], 2, /--controller must be an http\(s\):\/\/host\[:port\] URL/],
    [['--controller', 'http://127.0.0.1:1', '--token', 'not-a-token'], 2, /--token does not look like a join token/],
    [['--controller', 'http://127.0.0.1:1', '--token'], 2, /--token needs a value/],
    [['--controller', 'http://127.0.0.1:1', '--port', '70000'], 2, /--port must be 1\.\.65535/],
    [['--controller', 'http://127.0.0.1:1', '--labels', 'no-equals'], 2, /--labels must be k=v pairs/],
    [['--controller', 'http://127.0.0.1:1', '--prefix', 'relative/dir'], 2, /--prefix must be an absolute path/],
    [['--controller', 'http://127.0.0.1:1', '--prefix', '/usr'], 2, /system directory/],
    [['--frobnicate'], 2, /unknown option "--frobnicate"/],
  ];
  if (!existsSync('/run/systemd/system')) {
    // Checked before anything is installed, so the operator learns it in a second, not after npm ci.
    cases.push([['--controller', 'http://127.0.0.1:1', '--token', 'opj_0123456789ab.secret', '--prefix', '/nonexistent/outpost-e2e'], 1, /systemd is not running on this host; re-run with --no-systemd/]);
  }
  for (const [args, code, re] of cases) {
    const r = await sh('bash', [script, ...args]);
    assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.match(r.stderr, /^install-agent: error: /);
    assert.ok(!/\bat .+:\d+:\d+\)?$/m.test(r.stderr), 'no stack trace');
  }
});

test('install-agent.sh installs into a prefix, enrolls, is idempotent and uninstalls', async (t) => {
  const dir = await tempDir('outpost-install-');
  // The service user must be able to walk down to its prefix.
  await chmod(dir, 0o755);
  const release = join(dir, 'release');
  const prefix = join(dir, 'prefix');
  const port = await freePort();
  const c = await TestController.start({ config: { heartbeat: { intervalMs: 500, downAfter: 3, upAfter: 2 } } });
  let agent: ReturnType<typeof spawn> | undefined;
  let agentOut = '';
  // Installing from a copy, as from an unpacked release: the script takes its sources from where it sits.
  for (const p of RELEASE_PATHS) await cp(join(ROOT, p), join(release, p), { recursive: true });
  const install = (args: string[], env: Record<string, string> = {}) =>
    sh('bash', [join(release, 'scripts/install-agent.sh'), '--prefix', prefix, '--user', SERVICE_USER, '--port', String(port), '--no-systemd', ...args], { timeoutMs: 600_000, env: { ...process.env, ...env } });
  try {
    // A well-formed token the controller does not know: installed files, but a clear enrollment error.
    const bad = await install(['--controller', c.url, '--token', 'opj_0123456789ab.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /install-agent: error: enrollment with http:\/\/127\.0\.0\.1:\d+ failed: enrollment refused: .+/);
    assert.match(bad.stderr, /re-run with a valid --token/);
    assert.equal((await c.api('GET', '/api/v1/nodes')).body.nodes.length, 0);

    const token = await c.joinToken({ ttl: '10m', uses: 1 });
    const t0 = Date.now();
    const first = await install(['--controller', c.url, '--name', 'installed-1', '--labels', 'region=e2e,isp=CT'], { OUTPOST_JOIN_TOKEN: token });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    t.diagnostic(`install after a failed enrollment (files already there): ${Date.now() - t0} ms`);
    assert.match(first.stdout, /joined as n_[0-9a-f]+/);
    const state = await stat(join(prefix, 'var/agent/state.json'));
    assert.equal(state.mode & 0o777, 0o600, 'credential file is 0600');
    const uid = Number((await sh('id', ['-u', SERVICE_USER])).stdout.trim());
    assert.ok(uid > 0, `service user ${SERVICE_USER} exists`);
    assert.equal(state.uid, uid, 'state is owned by the service user');
    const config = JSON.parse(await readFile(join(prefix, 'etc/agent.json'), 'utf8'));
    assert.deepEqual({ controller: config.controller, port: config.port, name: config.name, labels: config.labels }, { controller: c.url, port, name: 'installed-1', labels: { region: 'e2e', isp: 'CT' } });
    assert.ok(!JSON.stringify(config).includes(token.split('.')[1]), 'the join token is not written to the config');

    agent = spawn('runuser', ['-u', SERVICE_USER, '--', join(prefix, 'bin/outpost-agent')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OUTPOST_LOG_LEVEL: 'warn' } });
    agent.stdout!.on('data', (d: Buffer) => (agentOut += d));
    agent.stderr!.on('data', (d: Buffer) => (agentOut += d));
    const node = await until(
      `installed node up (agent output: ${agentOut.slice(-500)})`,
      async () => ((await c.api('GET', '/api/v1/nodes')).body.nodes as Array<{ name: string; state: string; labels: Record<string, string> }>).find((n) => n.name === 'installed-1' && n.state === 'up'),
      60_000,
      200,
    );
    assert.deepEqual(node.labels, { region: 'e2e', isp: 'CT' });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);

    // Twice: no new enrollment (no token needed), no reinstall of unchanged sources, port held by our own agent is fine.
    const t1 = Date.now();
    const second = await install(['--controller', c.url]);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    t.diagnostic(`idempotent re-run: ${Date.now() - t1} ms`);
    assert.match(second.stdout, /runtime files up to date/);
    assert.match(second.stdout, /already enrolled/);
    assert.match(second.stdout, /port \d+ is used by this installation's agent/);
    const nodes = (await c.api('GET', '/api/v1/nodes')).body.nodes as Array<{ name: string }>;
    assert.equal(nodes.filter((n) => n.name === 'installed-1').length, 1, 'still one node');
    assert.equal(JSON.parse(await readFile(join(prefix, 'etc/agent.json'), 'utf8')).name, 'installed-1', 'earlier flags are kept');

    // Another program on the port: a clear refusal before anything is touched.
    const blocker = createServer();
    const busyPort = await freePort();
    await new Promise<void>((r) => blocker.listen(busyPort, '0.0.0.0', r));
    try {
      const busy = await sh('bash', [join(release, 'scripts/install-agent.sh'), '--prefix', join(dir, 'other'), '--port', String(busyPort), '--no-systemd', '--controller', c.url, '--token', token]);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, new RegExp(`port ${busyPort} is already in use .*choose another with --port`));
      assert.ok(!existsSync(join(dir, 'other')), 'nothing installed when a prerequisite fails');
    } finally {
      await new Promise((r) => blocker.close(r));
    }

    const gone = await install(['--uninstall']);
    assert.equal(gone.code, 0, gone.stdout + gone.stderr);
    assert.ok(!existsSync(prefix), 'prefix removed');
    assert.notEqual((await sh('id', ['-u', SERVICE_USER])).code, 0, 'service user removed');
    await until('agent stopped by --uninstall', () => agent!.exitCode !== null || agent!.signalCode !== null, 30_000);
    await until('node down once its agent is gone', async () => (await c.api('GET', '/api/v1/nodes')).body.nodes.find((n: { name: string }) => n.name === 'installed-1')?.state === 'down', 30_000);
    const again = await install(['--uninstall']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /nothing to uninstall/);
  } finally {
    agent?.kill('SIGKILL');
    if (existsSync(prefix)) await sh('bash', [join(ROOT, 'scripts/install-agent.sh'), '--uninstall', '--prefix', prefix]);
    await c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
