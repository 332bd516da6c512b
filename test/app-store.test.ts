/**
 * app-store on the SDK test harness: both halves on the real runner, the Websoft9 routes reached with
 * inject(), the agent half pointed (socketPath) at a Docker Engine API on a unix socket that the test
 * runs (test/helpers/fake-docker.ts), or at nothing. Installs on a real Engine: test/e2e/app-store.e2e.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import appStore from '../plugins/app-store/index.ts';
import { testPlugin, type InjectResponse, type PluginHarness } from '../plugins/sdk/testing/index.ts';
import { fakeDocker, type FakeDocker } from './helpers/fake-docker.ts';
import { ROOT } from './helpers/cluster.ts';

type Spec = typeof appStore.spec;
const NO_SOCKET = '/nonexistent/outpost-docker.sock';
const PORTS = { from: 39100, to: 39199 };

let catalogDir: string;
before(async () => {
  catalogDir = await mkdtemp(join(tmpdir(), 'outpost-catalog-'));
  const app = (name: string, image: string) => ({ name, title: name, image, env: { TOKEN: '${secret.token}', APP: '${app}' }, ports: [{ container: 8080, role: 'http' }], volumes: [{ name: 'data', path: '/data' }], health: { type: 'running', seconds: 2 }, secrets: { token: { length: 20 } } });
  await writeFile(join(catalogDir, 'hello.json'), JSON.stringify(app('hello', 'outpost-test/hello:1')));
  await writeFile(join(catalogDir, 'crashy.json'), JSON.stringify(app('crashy', 'outpost-test/crashy:1')));
  await writeFile(join(catalogDir, 'broken-app.json'), JSON.stringify({ name: 'broken-app', title: 'Broken', image: 'Not An Image' }));
});
after(() => rm(catalogDir, { recursive: true, force: true }));

const config = (socketPath: string, extra: Record<string, unknown> = {}) => ({ catalogDirs: [join(ROOT, 'configs/apps'), catalogDir], socketPath, ports: PORTS, bindAddress: '127.0.0.1', ...extra });

function envelope(r: InjectResponse, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.code, '0', r.text);
  assert.match(r.json.message, message);
  assert.ok(!/\bat .*\.ts:\d+/.test(r.text), 'no stack trace in an answer');
}

describe('without a Docker Engine', () => {
  let h: PluginHarness<Spec>;
  before(async () => {
    h = await testPlugin({ plugin: appStore, config: config(NO_SOCKET), node: { name: 'nodock' } });
  });
  after(() => h?.close());

  test('the agent half is failed with the reason and retried with backoff; the controller half runs', async () => {
    const st = h.status();
    assert.equal(st.controller[0].state, 'running');
    assert.equal(st.agent[0].state, 'failed');
    assert.match(st.agent[0].error!, /^Docker Engine unreachable at \/nonexistent\/outpost-docker\.sock: .*ENOENT/);
    assert.deepEqual(h.transitions.map((t) => [t.host, t.change]), [['agent', 'failed']]);
    const retries = () => h.logs.filter((l) => l.plugin === 'app-store' && l.msg === 'plugin failed to start').length;
    const before = retries();
    await h.clock.tick(1000);
    await h.until('a retry after the first backoff', () => retries() > before);
    assert.equal(h.status().agent[0].state, 'failed');
  });

  test('seed routes: validation first, then the node\'s failure, each in the Websoft9 envelope', async () => {
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: { appName: 'nginx' }, admin: false }), 401, /admin token required/);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: {} }), 400, /^missing parameter "appName"$/);
    envelope(await h.inject({ method: 'GET', url: '/installApp?appName=Bad_Name' }), 400, /^invalid appName "Bad_Name": it must match/);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: { appName: { nested: true } } }), 400, /field "appName" must be a string/);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: { appName: 'nosuchapp' } }), 404, /^unknown app "nosuchapp": it is not in the catalog$/);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: { appName: 'broken-app' } }), 400, /^broken-app cannot be installed: invalid manifest broken-app\.json: image: not a valid image reference/);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: { appName: 'nginx', node: 'ghost' } }), 404, /^unknown node "ghost"$/);
    envelope(await h.inject({ method: 'POST', url: '/uninstallApp', body: { appName: 'nginx', purge: 'maybe' } }), 400, /^parameter "purge" must be true or false$/);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: '{"appName":', headers: { 'content-type': 'application/json' } }), 400, /malformed JSON/);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: { appName: 'nginx' } }), 503, /^app-store on node nodock is failed: Docker Engine unreachable at \/nonexistent/);
    envelope(await h.inject({ method: 'POST', url: '/getAppInfo', form: { appName: 'nginx', node: 'nodock' } }), 503, /app-store on node nodock is failed/);
    envelope(await h.inject({ method: 'GET', url: '/uninstallApp?appName=nginx&node=nodock&purge=true' }), 503, /app-store on node nodock is failed/);
    assert.equal(h.commands.length, 0, 'nothing reached the node');
  });

  test('admin REST: the catalog with its rejected manifests; secrets only for admins', async () => {
    const r = await h.inject({ method: 'GET', url: '/api/v1/apps' });
    assert.equal(r.status, 200, r.text);
    const names = r.json.catalog.map((x: { name: string }) => x.name);
    for (const n of ['nginx', 'redmine', 'wordpress', 'gitea', 'hello']) assert.ok(names.includes(n), n);
    assert.match(r.json.invalid['broken-app'], /image: not a valid image reference/);
    assert.equal((await h.inject({ method: 'GET', url: '/api/v1/apps/nodock/hello/secrets', admin: false })).status, 401);
    const down = await h.inject({ method: 'GET', url: '/api/v1/apps/nodock/hello/secrets' });
    assert.equal(down.status, 503, down.text);
    assert.match(down.json.error.message, /^app-store on node nodock is failed: Docker Engine unreachable/);
    assert.equal((await h.inject({ method: 'GET', url: '/api/v1/apps/ghost/hello/secrets' })).status, 404);
    assert.equal((await h.inject({ method: 'GET', url: '/api/v1/apps/nodock/Bad_App/secrets' })).status, 400);
  });

  test('a config push: `open: true` opens the seed routes only; bad ones are refused naming the field', async () => {
    await h.configure(config(NO_SOCKET, { open: true }) as never);
    envelope(await h.inject({ method: 'POST', url: '/installApp', body: { appName: 'hello' }, admin: false }), 503, /Docker Engine unreachable/);
    assert.equal((await h.inject({ method: 'GET', url: '/api/v1/apps', admin: false })).status, 401, 'the admin REST routes stay closed');
    await h.configure(config(NO_SOCKET, { ports: { from: 9100, to: 9000 } }) as never);
    assert.match(h.status().controller[0].error ?? '', /ports: "from" must not be above "to"/);
  });
});

describe('with a Docker Engine API on a unix socket', () => {
  let docker: FakeDocker;
  let h: PluginHarness<Spec>;
  before(async () => {
    docker = await fakeDocker({ images: ['outpost-test/hello:1'], exits: ['outpost-test/crashy:1'] });
    h = await testPlugin({ plugin: appStore, config: config(docker.socketPath), node: { name: 'docked', capabilities: { docker: { available: true } } } });
  });
  after(async () => {
    await h?.close();
    await docker?.close();
  });

  const info = async (app: string) => (await h.inject({ method: 'GET', url: `/getAppInfo?appName=${app}` })).json.data;

  test('the agent half starts once the Engine answers and reports what is installed', async () => {
    assert.deepEqual(h.status().agent, [{ name: 'app-store', state: 'running' }]);
    assert.ok(docker.requests.some((r) => r.url === '/_ping'));
    assert.deepEqual(h.reports.map((r) => r.type), ['snapshot']);
    const all = await h.inject({ method: 'GET', url: '/getAllAppInfo' });
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.json, { code: '1', message: '所有App状态信息查询成功', data: { node: 'docked', count: 0, apps: [] } });
  });

  test('install: "1" at once with status 3, then the containers and ports, running (1) once healthy; app.installed', async () => {
    const r = await h.inject({ method: 'POST', url: '/installApp', form: { appName: 'hello' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.code, '1');
    assert.equal(r.json.data.status, '3');
    const port = Number(r.json.data.port);
    assert.ok(port >= PORTS.from && port <= PORTS.to, `port ${port}`);
    await h.until('the container runs', () => docker.containers.get('websoft9-hello')?.status === 'running');
    // Healthy after 2 s of running, on the fake clock.
    assert.equal((await info('hello')).status, '3');
    await h.clock.tick(3000);
    const done = await h.until('installed', async () => ((await info('hello')).status === '1' ? info('hello') : undefined));
    assert.equal(done.port, String(port));
    assert.deepEqual(docker.containers.get('websoft9-hello')!.bindings, { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] });
    assert.ok(docker.networks.has('websoft9-hello') && docker.volumes.has('websoft9-hello-data'));
    // The agent reports once its record is saved; the controller announces it.
    const installed = await h.until('app.installed', () => h.events.find((e) => e.event === 'app.installed'));
    assert.equal((installed.payload as { appName: string }).appName, 'hello');
    assert.equal(h.metric('outpost_apps', { node: 'docked', status: '1' }), 1);
    envelope(await h.inject({ method: 'POST', url: '/installApp', form: { appName: 'hello' } }), 409, /already exists/);
  });

  test('a container that exits: the install fails with its logs, without the secret they quote, and is rolled back', async () => {
    const r = await h.inject({ method: 'POST', url: '/installApp', body: { appName: 'crashy' } });
    assert.equal(r.status, 200, r.text);
    const failed = await h.until('the install failed', async () => ((await info('crashy')).status === '2' ? info('crashy') : undefined));
    assert.match(failed.info, /^container websoft9-crashy exited with code 9: config: TOKEN=\*\*\* APP=crashy$/);
    const secrets = await h.inject({ method: 'GET', url: '/api/v1/apps/docked/crashy/secrets' });
    const token: string = secrets.json.secrets.token;
    assert.equal(token.length, 20);
    assert.ok(!JSON.stringify(h.reports).includes(token) && !JSON.stringify(h.events).includes(token) && !JSON.stringify(h.logs).includes(token), 'the secret is in no report, event or log');
    assert.ok(!docker.containers.has('websoft9-crashy') && !docker.networks.has('websoft9-crashy') && !docker.volumes.has('websoft9-crashy-data'), 'rolled back');
    await h.until('app.failed', () => h.events.some((e) => e.event === 'app.failed' && (e.payload as { appName: string }).appName === 'crashy'));
  });

  test('uninstall keeps the volumes unless purged; a second uninstall is 404', async () => {
    const r = await h.inject({ method: 'POST', url: '/uninstallApp', body: { appName: 'hello' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.purged, false);
    assert.ok(!docker.containers.has('websoft9-hello') && !docker.networks.has('websoft9-hello'));
    assert.ok(docker.volumes.has('websoft9-hello-data'), 'data kept');
    envelope(await h.inject({ method: 'POST', url: '/uninstallApp', body: { appName: 'hello' } }), 404, /is not installed/);
    const purged = await h.inject({ method: 'POST', url: '/uninstallApp', body: { appName: 'hello', purge: true } });
    assert.equal(purged.status, 200, purged.text);
    assert.ok(!docker.volumes.has('websoft9-hello-data'), 'purged');
    await h.settle();
    assert.deepEqual(h.events.filter((e) => e.event === 'app.uninstalled').map((e) => (e.payload as { purged: boolean }).purged), [false, true]);
  });
});
