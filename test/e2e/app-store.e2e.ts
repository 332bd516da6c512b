/**
 * app-store on a real Docker Engine.
 *
 * Docker in this sandbox (Debian 12, docker.io 20.10.24): plain `dockerd` with no flags works
 * (overlay2 storage, iptables on): `dockerd >/tmp/dockerd.log 2>&1 &`. Fallbacks if overlay or
 * iptables fail elsewhere: `--storage-driver=vfs`, then `--iptables=false`.
 *
 * The test builds its image itself (test/apps/build-busybox-image.sh: `docker import` of a
 * busybox-static rootfs; no registry) and FAILS when the Engine is unreachable: nothing is skipped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import { join } from 'node:path';
import { ROOT, TestAgent, TestController, until } from '../helpers/cluster.ts';
import { startReceiver, type Receiver } from './lib/receiver.ts';
import { lockDocker } from '../apps/docker-lock.ts';
import { containerExists, docker, DOCKER_SOCKET, networkExists, removeAppLeftovers, volumeExists } from './lib/docker-apps.ts';

const exec = promisify(execFile);
const SOCKET = DOCKER_SOCKET;
const RANGE_A = { from: 9001, to: 9099 };
const RANGE_B = { from: 9101, to: 9103 };
const TEST_APPS = ['busybox-httpd', 'busybox-stack', 'busybox-broken', 'busybox-slow'];

/** Removes what an earlier, interrupted run may have left (only the test apps' own names). */
const cleanLeftovers = () => removeAppLeftovers(TEST_APPS, ['outpost-e2e-port-blocker']);

describe('app-store on a real Docker Engine', () => {
  let c: TestController;
  let a: TestAgent;
  let b: TestAgent;
  let rx: Receiver;
  let unlock: (() => Promise<void>) | undefined;

  const seed = (path: string, body: Record<string, unknown>) => c.api('POST', path, body);
  async function waitStatus(app: string, node: string, status: string, timeoutMs = 60_000) {
    return until(`${app} on ${node} status ${status}`, async () => {
      const r = await seed('/getAppInfo', { appName: app, node });
      return r.body?.code === '1' && r.body.data.status === status ? r.body.data : undefined;
    }, timeoutMs, 250);
  }
  /** Signs in like a browser (cookie session) and returns the HTML of every dashboard section. */
  async function dashboardPanels(): Promise<string> {
    const login = await fetch(`${c.url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(c.adminToken)}` });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
    assert.ok(cookie, `sign-in gave no cookie (${login.status})`);
    const r = await fetch(`${c.url}/dashboard/fragment`, { headers: { cookie } });
    assert.equal(r.status, 200);
    return JSON.stringify(((await r.json()) as { sections: Array<{ html: string }> }).sections.map((x) => x.html)).replace(/\\"/g, '"');
  }
  const page = async (port: string | number, path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).text();

  before(async () => {
    await docker.ping().catch((err) => assert.fail(`Docker Engine unreachable at ${SOCKET}: ${(err as Error).message} (start dockerd; see the comment at the top of this file)`));
    unlock = await lockDocker();
    await exec('bash', [join(ROOT, 'test/apps/build-busybox-image.sh')], { timeout: 120_000 });
    await cleanLeftovers();
    rx = await startReceiver();
    // Each agent runs on its own config file (the controller pushes only configs set through its REST API).
    const store = { catalogDirs: ['configs/apps', 'test/apps'], socketPath: SOCKET, ports: RANGE_A, healthTimeoutSec: 30, stopTimeoutSec: 1 };
    const stats = { interval: 1, diskInterval: 2 };
    c = await TestController.start({ config: { plugins: { 'server-stats': stats, 'app-store': store } } });
    a = await TestAgent.start(c, { name: 'store-a', plugins: { 'server-stats': stats, 'app-store': store } });
    b = await TestAgent.start(c, { name: 'store-b', plugins: { 'server-stats': stats, 'app-store': { ...store, ports: RANGE_B } } });
    await until('both app-store agents up', async () => {
      const nodes = (await c.api('GET', '/api/v1/nodes')).body.nodes as Array<{ name: string; state: string; plugins: Array<{ name: string; state: string }> }>;
      return nodes.filter((n) => n.state === 'up' && n.plugins.some((p) => p.name === 'app-store' && p.state === 'running')).length === 2;
    }, 30_000);
    const sub = await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['app.installed', 'app.failed', 'app.uninstalled'] });
    assert.equal(sub.status, 201, sub.text);
  });

  after(async () => {
    await b?.stop();
    await a?.stop();
    await c?.stop();
    await rx?.close();
    await cleanLeftovers();
    await unlock?.();
  });

  test('install → serve → uninstall keeps the volume → reinstall reuses data → purge removes it', async () => {
    // A created-but-stopped container binding the range's first port: the allocator must skip it.
    await docker.createContainer({ name: 'outpost-e2e-port-blocker', Image: 'outpost-test/busybox:latest', Cmd: ['true'], ExposedPorts: { '80/tcp': {} }, HostConfig: { PortBindings: { '80/tcp': [{ HostPort: String(RANGE_A.from) }] } } });
    try {
      const r = await seed('/installApp', { appName: 'busybox-httpd', node: 'store-a' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.code, '1', r.text);
      assert.equal(r.body.message, 'busybox-httpd安装成功');
      assert.equal(r.body.data.containerName, 'websoft9-busybox-httpd');
      assert.equal(r.body.data.status, '3');
      const port = Number(r.body.data.port);
      assert.ok(port > RANGE_A.from && port <= RANGE_A.to, `port ${port} must be in the range and not the stopped container's ${RANGE_A.from}`);

      const info = await waitStatus('busybox-httpd', 'store-a', '1');
      assert.equal(info.port, String(port));
      assert.equal(info.progress, 100);
      assert.equal(await page(port, '/index.html'), 'outpost test image\n');
      const first = await page(port, '/first');
      assert.match(first, /^[0-9a-f-]{36}\n$/);

      const inspect = await docker.getContainer('websoft9-busybox-httpd').inspect();
      assert.equal(inspect.Config.Labels['io.outpost.managed'], 'true');
      assert.equal(inspect.Config.Labels['io.outpost.app'], 'busybox-httpd');
      assert.ok(await networkExists('websoft9-busybox-httpd'));

      // The generated secret reaches the container and the admin route, never a seed answer.
      const secrets = await c.api('GET', `/api/v1/apps/store-a/busybox-httpd/secrets`);
      assert.equal(secrets.status, 200, secrets.text);
      const token = secrets.body.secrets.token as string;
      assert.equal(token.length, 20);
      assert.ok(inspect.Config.Env.includes(`APP_TOKEN=${token}`));
      const all = await seed('/getAllAppInfo', { node: 'store-a' });
      assert.equal(all.body.code, '1', all.text);
      assert.deepEqual(all.body.data.apps.map((x: { appName: string }) => x.appName), ['busybox-httpd']);
      const overview = await c.api('GET', '/api/v1/apps');
      const dash = await dashboardPanels();
      assert.match(dash, /data-app="busybox-httpd" data-status="1"/, 'the Apps panel lists the running app');
      assert.ok(dash.includes(`${port}→8080/tcp http`), 'the panel shows the port mapping');
      for (const text of [r.text, JSON.stringify(info), all.text, overview.text, dash]) assert.ok(!text.includes(token), 'a secret leaked into an answer');
      assert.equal(secrets.headers.get('cache-control'), 'no-store');

      // /searchServer (server-stats) counts containers through the same Engine.
      const stats = await until('container counts in searchServer', async () => {
        const s = await c.api('GET', '/searchServer?node=store-a');
        return s.body?.data?.containers?.running >= 1 ? s.body.data.containers : undefined;
      }, 30_000);
      assert.ok(stats.total >= 2 && stats.running >= 1, JSON.stringify(stats));

      const un = await seed('/uninstallApp', { appName: 'busybox-httpd', node: 'store-a' });
      assert.equal(un.body.code, '1', un.text);
      assert.equal(un.body.message, 'busybox-httpd卸载成功');
      assert.equal(await containerExists('websoft9-busybox-httpd'), false);
      assert.equal(await networkExists('websoft9-busybox-httpd'), false);
      assert.equal(await volumeExists('websoft9-busybox-httpd-www'), true, 'uninstall without purge keeps the volume');
      const after1 = await seed('/getAppInfo', { appName: 'busybox-httpd', node: 'store-a' });
      assert.equal(after1.body.data.status, '0', after1.text);
      const again = await seed('/uninstallApp', { appName: 'busybox-httpd', node: 'store-a' });
      assert.equal(again.body.code, '0', again.text);
      assert.equal(again.status, 404);
      assert.match(again.body.message, /not installed/);

      const re = await seed('/installApp', { appName: 'busybox-httpd', node: 'store-a' });
      assert.equal(re.body.code, '1', re.text);
      const info2 = await waitStatus('busybox-httpd', 'store-a', '1');
      assert.equal(await page(info2.port, '/first'), first, 'the reinstall must serve the data kept in the volume');
      const secrets2 = await c.api('GET', `/api/v1/apps/store-a/busybox-httpd/secrets`);
      assert.equal(secrets2.body.secrets.token, token, 'a reinstall keeps its secrets (the data was made with them)');

      // Form-encoded and GET work the same as JSON.
      const purge: any = await fetch(`${c.url}/uninstallApp`, { method: 'POST', headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'appName=busybox-httpd&node=store-a&purge=true' }).then((x) => x.json());
      assert.equal(purge.code, '1', JSON.stringify(purge));
      assert.equal(await volumeExists('websoft9-busybox-httpd-www'), false, 'purge removes the volume');
      const gone = await c.api('GET', '/getAppInfo?appName=busybox-httpd&node=store-a');
      assert.equal(gone.body.data.status, '0');
      assert.match(gone.body.data.info, /not installed/);

      const installed = await rx.waitFor('app.installed', (x) => x.json?.data?.appName === 'busybox-httpd');
      assert.equal(installed.json.data.node, 'store-a');
      assert.equal(installed.json.data.status, '1');
      await rx.waitFor('app.uninstalled', (x) => x.json?.data?.appName === 'busybox-httpd' && x.json.data.purged === true);
      for (const x of rx.requests) assert.ok(!x.body.includes(token), 'a secret leaked into a webhook');
    } finally {
      await docker.getContainer('outpost-e2e-port-blocker').remove({ force: true });
    }
  });

  test('an app whose command fails: status 2 with the reason, nothing left behind', async () => {
    const r = await seed('/installApp', { appName: 'busybox-broken', node: 'store-a' });
    assert.equal(r.body.code, '1', r.text);
    const info = await waitStatus('busybox-broken', 'store-a', '2');
    assert.match(info.info, /websoft9-busybox-broken exited with code 3/);
    assert.match(info.info, /boom: cannot start/);
    assert.equal(await containerExists('websoft9-busybox-broken'), false);
    assert.equal(await networkExists('websoft9-busybox-broken'), false);
    assert.equal(await volumeExists('websoft9-busybox-broken-data'), false);
    const ev = await rx.waitFor('app.failed', (x) => x.json?.data?.appName === 'busybox-broken');
    assert.match(ev.json.data.info, /exited with code 3/);
    // A failed app may be installed again (and fails again the same way).
    const again = await seed('/installApp', { appName: 'busybox-broken', node: 'store-a' });
    assert.equal(again.body.code, '1', again.text);
    await waitStatus('busybox-broken', 'store-a', '2');
  });

  test('an agent killed mid-install rolls the install back when it restarts: status 2, nothing left behind', async () => {
    const r = await seed('/installApp', { appName: 'busybox-slow', node: 'store-a' });
    assert.equal(r.body.code, '1', r.text);
    await until('the container started', async () => (await docker.listContainers({ filters: { name: ['websoft9-busybox-slow'] } })).length === 1, 30_000);
    await a.kill('SIGKILL');
    await a.restart();
    const info = await waitStatus('busybox-slow', 'store-a', '2');
    assert.match(info.info, /interrupted: the agent restarted during the install/);
    assert.equal(await containerExists('websoft9-busybox-slow'), false);
    assert.equal(await networkExists('websoft9-busybox-slow'), false);
    assert.equal(await volumeExists('websoft9-busybox-slow-www'), false);
    await rx.waitFor('app.failed', (x) => x.json?.data?.appName === 'busybox-slow');
  });

  test('an app with a database sidecar: own network, sidecar reachable by name, db_port published', async () => {
    const r = await seed('/installApp', { appName: 'busybox-stack', node: 'store-a' });
    assert.equal(r.body.code, '1', r.text);
    assert.notEqual(r.body.data.db_port, '');
    assert.notEqual(r.body.data.db_port, r.body.data.port);
    const info = await waitStatus('busybox-stack', 'store-a', '1');
    assert.equal(await page(info.port, '/db.txt'), 'sidecar-ok\n');
    assert.equal(await page(info.db_port, '/'), 'sidecar-ok\n');
    assert.ok(await containerExists('websoft9-busybox-stack-db'));
    const db = await docker.getContainer('websoft9-busybox-stack-db').inspect();
    assert.equal((db.State as { Health?: { Status?: string } }).Health?.Status, 'healthy', 'the db sidecar passed its Docker HEALTHCHECK');
    assert.equal((await docker.getContainer('websoft9-busybox-stack-cache').inspect()).State.Running, true);
    const un = await seed('/uninstallApp', { appName: 'busybox-stack', node: 'store-a', purge: true });
    assert.equal(un.body.code, '1', un.text);
    assert.equal(await containerExists('websoft9-busybox-stack-db'), false);
    assert.equal(await containerExists('websoft9-busybox-stack-cache'), false);
    assert.equal(await volumeExists('websoft9-busybox-stack-db'), false);
  });

  test('two racing installs of one app: one wins, the other is told it already exists', async () => {
    const [x, y] = await Promise.all([seed('/installApp', { appName: 'busybox-httpd', node: 'store-a' }), seed('/installApp', { appName: 'busybox-httpd', node: 'store-a' })]);
    const codes = [x.body.code, y.body.code].sort();
    assert.deepEqual(codes, ['0', '1'], `${x.text}\n${y.text}`);
    const loser = x.body.code === '0' ? x : y;
    assert.match(loser.body.message, /already exists/);
    assert.equal(loser.status, 409);
    await waitStatus('busybox-httpd', 'store-a', '1');
    const ours = await docker.listContainers({ all: true, filters: { label: ['io.outpost.app=busybox-httpd'] } });
    assert.equal(ours.length, 1);
    const done = await seed('/installApp', { appName: 'busybox-httpd', node: 'store-a' });
    assert.equal(done.body.code, '0');
    assert.match(done.body.message, /already exists/);
    const un = await seed('/uninstallApp', { appName: 'busybox-httpd', node: 'store-a', purge: true });
    assert.equal(un.body.code, '1', un.text);
  });

  test('the node parameter lands the install on the second agent; its small range runs out with a clear error', async () => {
    // A host socket on the middle port of node b's range: it must never be handed out.
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(RANGE_B.from + 1, '0.0.0.0', resolve));
    try {
      const r = await seed('/installApp', { appName: 'busybox-httpd', node: 'store-b' });
      assert.equal(r.body.code, '1', r.text);
      assert.equal(r.body.data.node, 'store-b');
      assert.equal(r.body.data.port, String(RANGE_B.from));
      await waitStatus('busybox-httpd', 'store-b', '1');
      const onA = await seed('/getAppInfo', { appName: 'busybox-httpd', node: 'store-a' });
      assert.equal(onA.body.data.status, '0', 'the app must not be on node a');
      assert.equal(await page(RANGE_B.from, '/index.html'), 'outpost test image\n');

      // busybox-stack needs three ports; only RANGE_B.to is left.
      const full = await seed('/installApp', { appName: 'busybox-stack', node: 'store-b' });
      assert.equal(full.status, 409);
      assert.equal(full.body.code, '0', full.text);
      assert.match(full.body.message, /port range 9101-9103 exhausted: 3 ports needed, 1 free/);
      assert.equal(await containerExists('websoft9-busybox-stack'), false);

      const all = await seed('/getAllAppInfo', { node: 'store-b' });
      assert.deepEqual(all.body.data.apps.map((x: { appName: string }) => x.appName), ['busybox-httpd']);
      const wipe = await c.api('GET', '/uninstallAllApp?node=store-b&purge=1');
      assert.equal(wipe.body.code, '1', wipe.text);
      assert.deepEqual(wipe.body.data.uninstalled, ['busybox-httpd']);
      assert.equal(await containerExists('websoft9-busybox-httpd'), false);
      assert.equal(await volumeExists('websoft9-busybox-httpd-www'), false);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
