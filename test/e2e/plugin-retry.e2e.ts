/**
 * A plugin whose start fails at run time (here: app-store before the Docker socket exists) is retried
 * by the agent with backoff and recovers by itself once the cause is gone, announcing plugin.recovered.
 * Needs a real Docker Engine (started by test/e2e/run.sh); fails, never skips, when it is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { TestAgent, TestController, until } from '../helpers/cluster.ts';

const SOCKET = process.env.OUTPOST_DOCKER_SOCKET ?? '/var/run/docker.sock';

test('a plugin that failed for a run-time reason recovers on its own when the cause is gone', async () => {
  await new Docker({ socketPath: SOCKET }).ping(); // the Engine must be there: this test does not skip
  const dir = await mkdtemp(join(tmpdir(), 'outpost-retry-'));
  const lateSocket = join(dir, 'docker.sock');
  const c = await TestController.start({ config: { plugins: { 'server-stats': {}, 'app-store': {} } } });
  const a = await TestAgent.start(c, {
    name: 'retry',
    plugins: { 'server-stats': { interval: 1 }, 'app-store': { socketPath: lateSocket, catalogDirs: ['configs/apps'] } },
    env: { OUTPOST_PLUGIN_RETRY_MS: '300' },
  });
  try {
    const failed = await until('app-store failed on the node', async () => {
      const n = await c.node(a.nodeId);
      return n?.plugins.find((p: { name: string; state: string }) => p.name === 'app-store' && p.state === 'failed');
    });
    assert.match(failed.error, /docker/i);
    assert.equal((await a.local('GET', '/healthz')).status, 200, 'the agent keeps running');

    await symlink(SOCKET, lateSocket);
    await until('app-store running on the node', async () => {
      const n = await c.node(a.nodeId);
      return n?.plugins.some((p: { name: string; state: string }) => p.name === 'app-store' && p.state === 'running');
    }, 30_000);
    const events = (await c.api('GET', '/api/v1/events?limit=200')).body.events as Array<{ event: string; data: { plugin: string; node: { id: string } | null } }>;
    assert.ok(events.some((e) => e.event === 'plugin.failed' && e.data.plugin === 'app-store' && e.data.node?.id === a.nodeId));
    assert.ok(events.some((e) => e.event === 'plugin.recovered' && e.data.plugin === 'app-store' && e.data.node?.id === a.nodeId));
  } finally {
    await a.stop();
    await c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
