/**
 * The watchdog sweeps only the nodes its beat order says are past the window: a beat must move its node
 * to the newest end, a sweep must take exactly the nodes silent since the cutoff (oldest first) and leave
 * the rest, a taken node must come back with its next beat, and a deleted node must leave the order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BeatOrder, type BeatEntry } from '../controller/beat-order.ts';

interface Node extends BeatEntry<Node> {
  id: string;
}

const node = (id: string): Node => ({ id, beatAt: 0, older: null, newer: null });
const ids = (nodes: Node[]) => nodes.map((n) => n.id);

test('a sweep takes the nodes silent since the cutoff, oldest first, and a beat brings one back', () => {
  const order = new BeatOrder<Node>();
  const [a, b, c] = [node('a'), node('b'), node('c')];
  order.beat(a, 1);
  order.beat(b, 2);
  order.beat(c, 3);
  // a beats again: it is now the newest, b the oldest.
  order.beat(a, 4);
  assert.deepEqual(ids(order.takeOlderThan(3.5)), ['b', 'c']);
  // Taken nodes are out of the order: the same sweep again finds nobody.
  assert.deepEqual(ids(order.takeOlderThan(3.5)), []);
  order.beat(b, 5);
  assert.deepEqual(ids(order.takeOlderThan(10)), ['a', 'b']);
  assert.deepEqual(ids(order.takeOlderThan(100)), []);
});

test('the newest beating again and removals at either end or in the middle keep the order whole', () => {
  const order = new BeatOrder<Node>();
  const [a, b, c, d] = [node('a'), node('b'), node('c'), node('d')];
  for (const [i, n] of [a, b, c, d].entries()) order.beat(n, i);
  order.beat(d, 10);
  order.remove(b);
  order.remove(a);
  order.remove(d);
  // Removing a node no longer in the order changes nothing.
  order.remove(b);
  order.beat(a, 11);
  assert.deepEqual(ids(order.takeOlderThan(100)), ['c', 'a']);
  assert.equal(order.takeOlderThan(100).length, 0);
});
