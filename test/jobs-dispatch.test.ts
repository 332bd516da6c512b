import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickNode, whyWaiting, type Candidate } from '../plugins/jobs/dispatch.ts';

const node = (id: string, o: Partial<Candidate> = {}): Candidate => ({ id, live: true, runsJobs: true, labels: {}, inFlight: 0, lastDispatchAt: 0, ...o });
const policy = { labels: {}, concurrencyPerNode: 4 };

test('least busy by callbacks in flight', () => {
  assert.equal(pickNode([node('a', { inFlight: 3 }), node('b', { inFlight: 1 }), node('c', { inFlight: 2 })], policy)?.id, 'b');
});

test('ties go to the node that least recently got a task, then by id', () => {
  assert.equal(pickNode([node('a', { lastDispatchAt: 20 }), node('b', { lastDispatchAt: 10 })], policy)?.id, 'b');
  assert.equal(pickNode([node('b'), node('a')], policy)?.id, 'a');
});

test('a burst spreads evenly when the driver counts each pick', () => {
  const nodes = [node('a'), node('b'), node('c')];
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let t = 1; t <= 12; t++) {
    const n = pickNode(nodes, policy)!;
    n.inFlight++;
    n.lastDispatchAt = t;
    counts[n.id]++;
  }
  assert.deepEqual(counts, { a: 4, b: 4, c: 4 });
  assert.equal(pickNode(nodes, policy), undefined, 'every node at its concurrency: the task waits');
  assert.equal(whyWaiting(nodes, policy), 'all 3 eligible nodes are at 4 callbacks in flight');
});

test('down nodes, nodes without the plugin and nodes missing a selector label are skipped', () => {
  const nodes = [node('down', { live: false }), node('other', { runsJobs: false }), node('eu', { labels: { region: 'eu', tier: 'edge' }, inFlight: 3 }), node('us', { labels: { region: 'us' } })];
  assert.equal(pickNode(nodes, { labels: { region: 'eu' }, concurrencyPerNode: 4 })?.id, 'eu');
  assert.equal(pickNode(nodes, { labels: { region: 'eu', tier: 'core' }, concurrencyPerNode: 4 }), undefined);
  assert.equal(pickNode(nodes, policy)?.id, 'us');
});

test('why a task waits', () => {
  assert.equal(whyWaiting([], policy), 'no node runs the jobs plugin');
  assert.equal(whyWaiting([node('a', { live: false })], policy), 'no live node runs the jobs plugin');
  assert.equal(whyWaiting([node('a', { labels: { region: 'us' } })], { labels: { region: 'eu' }, concurrencyPerNode: 1 }), 'no live node running jobs has the labels region=eu');
});
