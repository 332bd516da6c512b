/**
 * The controller retries a plugin whose start failed, as the agent does: app-store's controller half
 * cannot start while its catalog folder is missing; once the folder appears it recovers on a retry,
 * mounts its routes on the already-listening server, and both transitions are in the event log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, TestController, http, tempDir, until } from './helpers/cluster.ts';

test('a controller plugin that failed to start is retried with backoff and recovers', async () => {
  const dir = await tempDir('outpost-catalog-');
  const catalog = join(dir, 'apps');
  const c = await TestController.start({ config: { plugins: { 'app-store': { catalogDirs: [catalog] }, 'server-stats': {} } }, env: { OUTPOST_PLUGIN_RETRY_MS: '300' } });
  try {
    const plugins = async () => Object.fromEntries((await c.api('GET', '/api/v1/plugins')).body.plugins.map((p: any) => [p.name, p]));
    const first = await plugins();
    assert.equal(first['server-stats'].state, 'running', 'the others run');
    assert.equal(first['app-store'].state, 'failed');
    assert.match(first['app-store'].error, /catalog folder .*apps cannot be read/);
    assert.equal((await http('GET', `${c.url}/readyz`)).status, 503);
    assert.equal((await c.api('GET', '/api/v1/apps')).status, 404, 'no routes before its first good start');

    await mkdir(catalog);
    await copyFile(join(ROOT, 'configs/apps/nginx.json'), join(catalog, 'nginx.json'));
    await until('app-store recovered', async () => (await plugins())['app-store'].state === 'running', 30_000);
    assert.equal((await http('GET', `${c.url}/readyz`)).status, 200);
    const apps = await c.api('GET', '/api/v1/apps');
    assert.equal(apps.status, 200, 'routes mounted on the listening server by the retry');
    assert.deepEqual(apps.body.catalog.map((a: any) => a.name), ['nginx']);

    const events = (await c.api('GET', '/api/v1/events?limit=100')).body.events.filter((e: any) => e.data?.plugin === 'app-store').reverse();
    assert.deepEqual(events.map((e: any) => e.event), ['plugin.failed', 'plugin.recovered'], 'failed once (not per retry), then recovered');
    assert.equal(events[0].data.node, null);
    assert.match(events[0].data.error, /catalog folder/);
  } finally {
    await c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
