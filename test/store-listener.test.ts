/**
 * The listener that keeps a controller's stores in step with other controllers (store-listener.ts),
 * against a fake database: notifications reach the named store with their version; malformed ones
 * are dropped; a lost connection is reopened and followed by a version check of every open store
 * (notifications sent meanwhile are gone); a check that fails is harmless. On PostgreSQL itself:
 * test/e2e/store-postgres.e2e.ts and controllers-coherence.e2e.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StoreListener, type ListenConnection } from '../runtime/storage/postgres/store-listener.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { until } from './helpers/cluster.ts';

function fakeDatabase() {
  const versions = new Map<string, number>([['nodes', 7], ['tokens', 3]]);
  const state = {
    opens: 0,
    failOpens: 0,
    failChecks: false,
    refreshed: [] as Array<[string, number]>,
    push: (_p: string) => undefined as void,
    drop: (_e: Error) => undefined as void,
    closed: 0,
  };
  const listener = new StoreListener({
    async open(onPayload, onLost): Promise<ListenConnection> {
      state.opens++;
      if (state.failOpens > 0) {
        state.failOpens--;
        throw new Error('connect ECONNREFUSED');
      }
      state.push = onPayload;
      state.drop = onLost;
      return { close: async () => void state.closed++ };
    },
    async versions(names) {
      if (state.failChecks) throw new Error('connection refused');
      return names.filter((n) => versions.has(n)).map((name) => ({ name, version: versions.get(name)! }));
    },
    names: () => ['nodes', 'tokens', 'webhooks'],
    refresh: (name, version) => void state.refreshed.push([name, version]),
    log: createLog('test', 'silent'),
    checkMs: 3_600_000,
    backoffMs: { min: 5, max: 20 },
  });
  return { listener, state, versions };
}

test('store listener: a notification refreshes the named store at its version; malformed payloads are dropped', async () => {
  const { listener, state } = fakeDatabase();
  await listener.start();
  assert.ok(listener.listening);
  // The check after connecting: every open store the database knows, at its version.
  assert.deepEqual(state.refreshed, [['nodes', 7], ['tokens', 3]]);
  state.refreshed = [];
  state.push('plugins/prober.monitors 12');
  state.push('nodes');
  state.push('nodes x');
  state.push(' 5');
  state.push('nodes 1.5');
  assert.deepEqual(state.refreshed, [['plugins/prober.monitors', 12]]);
  await listener.close();
  assert.equal(state.closed, 1);
  assert.equal(listener.listening, false);
});

test('store listener: a lost connection is reopened with backoff and followed by a version check', async () => {
  const { listener, state, versions } = fakeDatabase();
  await listener.start();
  state.refreshed = [];
  state.failOpens = 2;
  versions.set('nodes', 9);
  state.drop(new Error('terminating connection due to administrator command'));
  assert.equal(listener.listening, false);
  await until('reopened after two refusals', () => state.opens === 4 && listener.listening, 5000, 5);
  await until('caught up', () => state.refreshed.some(([n, v]) => n === 'nodes' && v === 9), 5000, 5);
  await listener.close();
});

test('store listener: a failing version check is harmless, and nothing reconnects after close', async () => {
  const { listener, state } = fakeDatabase();
  state.failChecks = true;
  await listener.start();
  assert.deepEqual(state.refreshed, []);
  state.failChecks = false;
  await listener.check();
  assert.equal(state.refreshed.length, 2);
  await listener.close();
  state.drop(new Error('gone'));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(state.opens, 1);
});

test('store listener: on the file backend nobody else writes, so onRemoteChange subscribes to nothing', async () => {
  const { tempDir } = await import('./helpers/cluster.ts');
  const { onRemoteChange, openStore } = await import('../plugins/sdk/store.ts');
  const dir = await tempDir('outpost-remote-change-');
  const s = await openStore<{ n: number }>(dir, 'plain', { n: 0 });
  let heard = 0;
  const off = onRemoteChange(s, () => heard++);
  await s.update((d) => void (d.n = 1));
  assert.equal(heard, 0, 'own writes are not remote changes');
  assert.equal(typeof off, 'function');
  off();
});
