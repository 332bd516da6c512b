/**
 * The prober's state log as a follower sees it when several controllers share a database: records
 * another controller appended reach the store's `load` after its own of the same moment, so the store
 * must not depend on the order of records from different controllers. Run here with a stand-in log
 * that hands the store records as PostgreSQL's would; the real thing is in
 * test/e2e/prober-controllers.e2e.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControllerContext, DurableLog, PluginLogOptions } from '../plugins/sdk/index.ts';
import { ProberStore, type StateRecord } from '../plugins/prober/store.ts';
import type { Spec } from '../plugins/prober/spec.ts';
import type { Group } from '../plugins/prober/schema.ts';
import { callbackId } from '../plugins/prober/controller.ts';
import { roundKey, type OpenRound } from '../plugins/prober/state.ts';

/** A store whose log records what it appends and lets the test play another controller's appends into it. */
async function openStore(): Promise<{ store: ProberStore; remote: (records: StateRecord[]) => void; reset: (records: StateRecord[]) => void; snapshot: () => StateRecord[]; appended: StateRecord[] }> {
  let opts!: PluginLogOptions<StateRecord>;
  const appended: StateRecord[] = [];
  const log = {
    name: 'prober.state',
    append: async (records: StateRecord[]) => void appended.push(...records),
  } as unknown as DurableLog<StateRecord>;
  const ctx = {
    dataDir: '/nonexistent/prober-follow-test',
    openLog: async (_name: string, _schema: unknown, o: PluginLogOptions<StateRecord>) => {
      opts = o;
      return log;
    },
  } as unknown as ControllerContext<Spec>;
  const store = await ProberStore.open(ctx);
  return {
    store,
    appended,
    remote: (records) => records.forEach((r) => opts.load(r)),
    snapshot: () => [...opts.snapshot()],
    reset: (records) => {
      opts.reset?.();
      records.forEach((r) => opts.load(r));
    },
  };
}

const group = (id: string): Group =>
  ({ key: `shop:${id}`, app: 'shop', groupId: id, interval: 5, level: 4, records: [{ id: '11', ip: '127.0.0.1' }], nodeRefs: [], protocol: 'tcp', port: 80, path: '/', domain: '', cookies: '', httpCode: null, timeout: 1, retryCount: 0, updatedAt: 1 }) as unknown as Group;

const openRound = (g: string, round: number, openedAt = round): OpenRound => ({ g, round, expected: ['n1'], openedAt, votes: {} });
const open = (g: string, round: number, openedAt = round): StateRecord => ({ t: 'open', o: openRound(g, round, openedAt) });

test('a round opened by a controller that had not yet seen its close stays closed; votes for it are dropped', async () => {
  const { store, remote } = await openStore();
  await store.putGroup(group('1'));
  await store.openRounds([openRound('shop:1', 5000)]);
  assert.ok(store.open[roundKey('shop:1', 5000)]);
  await store.decided([{ key: 'shop:1', s: { 11: { state: 'up', status: 1, resTime: 2, degraded: false, lastRound: 5000, lastChange: 1, views: {} } } }], [roundKey('shop:1', 5000)]);
  assert.equal(store.lastDecided('shop:1'), 5000);
  // Another controller took in a late report for round 5000 before it saw the close: its open and votes come after.
  remote([open('shop:1', 5000, 9000), { t: 'votes', k: roundKey('shop:1', 5000), node: 'n2', v: { 11: { s: 2, t: 0, at: 5100 } } }]);
  assert.equal(store.open[roundKey('shop:1', 5000)], undefined, 'not opened again');
  // The next round opens as usual, from here or from there.
  remote([open('shop:1', 10_000), { t: 'votes', k: roundKey('shop:1', 10_000), node: 'n2', v: { 11: { s: 1, t: 3, at: 10_100 } } }]);
  assert.deepEqual(Object.keys(store.open[roundKey('shop:1', 10_000)].votes['11']), ['n2']);
});

test('the latest decided round is known from closes made elsewhere and from a snapshot\'s states; a stopped group forgets it', async () => {
  const { store, remote, reset } = await openStore();
  await store.putGroup(group('2'));
  assert.equal(store.lastDecided('shop:2'), -1);
  remote([open('shop:2', 5000), { t: 'states', key: 'shop:2', s: { 11: { state: 'down', status: 2, resTime: 0, degraded: false, lastRound: 5000, lastChange: 1, views: {} } } }, { t: 'closed', k: [roundKey('shop:2', 5000)] }]);
  assert.equal(store.lastDecided('shop:2'), 5000);
  assert.equal(Object.keys(store.open).length, 0);
  // An older close arriving late does not move it back.
  remote([{ t: 'closed', k: [roundKey('shop:2', 0)] }]);
  assert.equal(store.lastDecided('shop:2'), 5000);

  // A follower that fell behind a compaction gets the snapshot again: states, no closes.
  reset([{ t: 'group', g: group('2') }, { t: 'states', key: 'shop:2', s: { 11: { state: 'up', status: 1, resTime: 1, degraded: false, lastRound: 15_000, lastChange: 2, views: {} } } }, open('shop:2', 20_000)]);
  assert.equal(store.lastDecided('shop:2'), 15_000);
  assert.deepEqual(Object.keys(store.open), [roundKey('shop:2', 20_000)]);
  assert.equal(store.data.records['shop:2']['11'].state, 'up');

  remote([{ t: 'stop', key: 'shop:2' }]);
  assert.equal(store.lastDecided('shop:2'), -1);
  assert.equal(store.data.groups['shop:2'], undefined);
  assert.equal(Object.keys(store.open).length, 0);
});

test('a round still open behind a later decided one (waiting for replays) survives a snapshot', async () => {
  const { store, snapshot } = await openStore();
  await store.putGroup(group('5'));
  await store.openRounds([openRound('shop:5', 5000), openRound('shop:5', 10_000)]);
  await store.decided([{ key: 'shop:5', s: { 11: { state: 'up', status: 1, resTime: 2, degraded: false, lastRound: 10_000, lastChange: 1, views: {} } } }], [roundKey('shop:5', 10_000)]);
  const reread = await openStore();
  reread.remote(snapshot());
  assert.deepEqual(Object.keys(reread.store.open), [roundKey('shop:5', 5000)]);
  assert.equal(reread.store.lastDecided('shop:5'), 10_000);
});

test('a reset forgets what the snapshot no longer holds', async () => {
  const { store, reset } = await openStore();
  await store.putGroup(group('3'));
  await store.putGroup(group('4'));
  await store.sawAgents(['n1'], 1);
  reset([{ t: 'group', g: group('4') }]);
  assert.deepEqual(Object.keys(store.data.groups), ['shop:4']);
  assert.deepEqual(Object.keys(store.data.knownAgents), []);
});

test('a round\'s callback is named by its group and round: a round decided twice (a takeover) is one delivery', () => {
  assert.equal(callbackId('shop:7', 1_700_000_005_000), 'round:shop:7:1700000005000');
  // The outbox's rule for ids (plugin prefix included): at most 128 of letters, digits, ".", "_", "-", ":".
  const longest = `prober:${callbackId(`${'a'.repeat(64)}:${'9'.repeat(18)}`, 9_999_999_999_999)}`;
  assert.ok(longest.length <= 128, `${longest.length}`);
  assert.match(longest, /^[A-Za-z0-9._:-]+$/);
});
