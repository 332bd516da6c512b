/**
 * The app-store API through a real controller and agent, with no Docker Engine: the agent's socket
 * path points nowhere, so its app-store fails with the reason while the agent keeps running, and
 * every answer is checked for Websoft9's envelope. Installs on a real Engine: test/e2e/app-store.e2e.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, TestAgent, TestController, http, tempDir, until } from './helpers/cluster.ts';

const NO_SOCKET = '/nonexistent/outpost-docker.sock';

describe('app-store API without a Docker Engine', () => {
  let c: TestController;
  let a: TestAgent;
  let catalogDir: string;
  const store = () => ({ catalogDirs: [join(ROOT, 'configs/apps'), catalogDir], socketPath: NO_SOCKET });

  before(async () => {
    catalogDir = await tempDir('outpost-catalog-');
    await writeFile(join(catalogDir, 'broken-app.json'), JSON.stringify({ name: 'broken-app', title: 'Broken', image: 'Not An Image' }));
    c = await TestController.start({ config: { plugins: { 'server-stats': { interval: 1 }, 'app-store': store() } } });
    a = await TestAgent.start(c, { name: 'nodock', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, 'app-store': store() } });
    await until('node up', async () => (await c.node(a.nodeId))?.state === 'up', 20_000);
  });

  after(async () => {
    await a?.stop();
    await c?.stop();
    await rm(catalogDir, { recursive: true, force: true });
  });

  const envelope = (r: { status: number; body: any; text: string }, status: number, message: RegExp) => {
    assert.equal(r.status, status, r.text);
    assert.equal(r.body?.code, '0', r.text);
    assert.match(r.body.message, message);
    assert.deepEqual(r.body.data, {});
    assert.ok(!/\bat .*\.ts:\d+/.test(r.text), 'no stack trace in an answer');
  };

  test('Docker unreachable: the plugin is failed with the reason, the agent and its other plugins keep running', async () => {
    const node = await until('app-store status reported', async () => {
      const n = await c.node(a.nodeId);
      return n?.plugins?.find((p: { name: string }) => p.name === 'app-store') ? n : undefined;
    });
    const plugin = node.plugins.find((p: { name: string }) => p.name === 'app-store');
    assert.equal(plugin.state, 'failed');
    assert.match(plugin.error, /Docker Engine unreachable at \/nonexistent\/outpost-docker\.sock: .*ENOENT/);
    assert.equal(node.plugins.find((p: { name: string }) => p.name === 'server-stats').state, 'running');
    const stats = await until('stats still flowing', async () => {
      const r = await c.api('GET', '/searchServer?node=nodock');
      return r.body?.code === '1' ? r : undefined;
    });
    assert.match(stats.body.data.cpu, /^\d+%$/);
    assert.equal(a.proc.child.exitCode, null);

    envelope(await c.api('POST', '/installApp', { appName: 'nginx' }), 503, /^app-store on node nodock is failed: Docker Engine unreachable at \/nonexistent/);
    envelope(await c.api('GET', '/getAllAppInfo?node=nodock'), 503, /app-store on node nodock is failed/);
  });

  test('requests are checked before anything reaches a node, each answer in the Websoft9 envelope', async () => {
    envelope(await http('POST', `${c.url}/installApp`, { body: { appName: 'nginx' } }), 401, /admin token required/);
    envelope(await c.api('POST', '/installApp', {}), 400, /^missing parameter "appName"$/);
    envelope(await c.api('GET', '/installApp?appName=Bad_Name'), 400, /^invalid appName "Bad_Name": it must match/);
    envelope(await c.api('POST', '/getAppInfo', { appName: 'x' }), 400, /invalid appName "x"/);
    envelope(await c.api('POST', '/installApp', { appName: 'a'.repeat(31) }), 400, /invalid appName/);
    envelope(await c.api('POST', '/installApp', { appName: { nested: true } }), 400, /field "appName" must be a string/);
    envelope(await c.api('POST', '/installApp', { appName: 'nosuchapp' }), 404, /^unknown app "nosuchapp": it is not in the catalog$/);
    envelope(await c.api('POST', '/installApp', { appName: 'broken-app' }), 400, /^broken-app cannot be installed: invalid manifest broken-app\.json: image: not a valid image reference/);
    envelope(await c.api('POST', '/installApp', { appName: 'nginx', node: 'ghost' }), 404, /^unknown node "ghost"$/);
    envelope(await c.api('POST', '/uninstallApp', { appName: 'nginx', purge: 'maybe' }), 400, /^parameter "purge" must be true or false$/);
    envelope(await c.api('POST', '/uninstallAllApp', { purge: [] }), 400, /purge/);
    envelope(await http('POST', `${c.url}/installApp`, { token: c.adminToken, raw: '{"appName":', headers: { 'content-type': 'application/json' } }), 400, /malformed JSON/);

    // Form bodies and query strings reach the same handler: the node's failure shows the fields were read.
    const form = await http('POST', `${c.url}/getAppInfo`, { token: c.adminToken, raw: 'appName=nginx&node=nodock', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    envelope(form, 503, /app-store on node nodock is failed/);
    envelope(await c.api('GET', '/uninstallApp?appName=nginx&node=nodock&purge=true'), 503, /app-store on node nodock is failed/);
  });

  test('admin REST: catalog overview with rejected manifests; secrets only for admins, in the REST envelope', async () => {
    const r = await c.api('GET', '/api/v1/apps');
    assert.equal(r.status, 200, r.text);
    const names = r.body.catalog.map((x: { name: string }) => x.name);
    for (const n of ['nginx', 'redmine', 'wordpress', 'gitea']) assert.ok(names.includes(n), n);
    assert.match(r.body.invalid['broken-app'], /image: not a valid image reference/);
    assert.deepEqual(r.body.nodes.map((n: { node: string }) => n.node), ['nodock']);

    const anon = await http('GET', `${c.url}/api/v1/apps/nodock/wordpress/secrets`);
    assert.equal(anon.status, 401);
    const down = await c.api('GET', '/api/v1/apps/nodock/wordpress/secrets');
    assert.equal(down.status, 503, down.text);
    assert.match(down.body.error.message, /^app-store on node nodock is failed: Docker Engine unreachable/);
    assert.equal((await c.api('GET', '/api/v1/apps/ghost/wordpress/secrets')).status, 404);
    assert.equal((await c.api('GET', '/api/v1/apps/nodock/Bad_App/secrets')).status, 400);
  });

  test('with `open: true` the Websoft9 routes need no token; a pushed config still fails without an Engine', async () => {
    const put = await c.api('PUT', '/api/v1/plugins/app-store/config', { ...store(), open: true });
    assert.equal(put.status, 200, put.text);
    const r = await until('open routes', async () => {
      const x = await http('POST', `${c.url}/installApp`, { body: { appName: 'nginx' } });
      return x.status !== 401 ? x : undefined;
    });
    envelope(r, 503, /app-store on node nodock is failed: Docker Engine unreachable/);
    assert.equal((await http('GET', `${c.url}/api/v1/apps`)).status, 401, 'the admin REST routes stay closed');
    const bad = await c.api('PUT', '/api/v1/plugins/app-store/config', { ...store(), ports: { from: 9100, to: 9000 } });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.body.error.message, /ports: "from" must not be above "to"/);
    const host = await c.api('PUT', '/api/v1/plugins/app-store/config', { ...store(), bindAddress: 'example.com' });
    assert.equal(host.status, 400, host.text);
    assert.match(host.body.error.message, /bindAddress: must be an IPv4 or IPv6 address/);
    const pushed = await until('agent applied the pushed config', async () => {
      const n = await c.node(a.nodeId);
      const p = n?.plugins?.find((x: { name: string }) => x.name === 'app-store');
      return p?.state === 'failed' ? p : undefined;
    });
    assert.match(pushed.error, /Docker Engine unreachable/);
  });
});
