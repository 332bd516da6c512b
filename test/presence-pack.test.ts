/**
 * What presence says of the nodes linked to a controller (runtime/cluster/presence.ts): each distinct
 * list of plugin states and of capabilities is written once, nodes name them by index, and reading
 * it back gives every node its own; a row written without them (or damaged) gives empty states.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packNodes, unpackNodes } from '../runtime/cluster/presence.ts';

test('linked nodes\' plugin states and capabilities round-trip through presence, each distinct list once', () => {
  const running = [{ name: 'server-stats', state: 'running' as const }];
  const failed = [{ name: 'server-stats', state: 'failed' as const, error: 'boom' }];
  const caps = { icmp: { available: true } } as any;
  const nodes: Record<string, any> = { n1: { plugins: running, capabilities: caps }, n2: { plugins: running, capabilities: caps }, n3: { plugins: failed }, n4: undefined };
  const ids = Object.keys(nodes);
  const packed = packNodes(ids, (id) => nodes[id]);
  assert.equal(packed.states.length, 3, 'running, failed, none');
  assert.equal(packed.caps.length, 1);
  const back = unpackNodes(ids, JSON.stringify(packed));
  assert.deepEqual(back.get('n1'), { plugins: running, capabilities: caps });
  assert.deepEqual(back.get('n2'), { plugins: running, capabilities: caps });
  assert.deepEqual(back.get('n3'), { plugins: failed });
  assert.deepEqual(back.get('n4'), { plugins: [] });
  // 10,000 nodes in the same states: the row holds one list of states, not 10,000.
  const many = Array.from({ length: 10_000 }, (_, i) => `n_${i}`);
  const text = JSON.stringify(packNodes(many, () => ({ plugins: running, capabilities: caps })));
  assert.ok(text.length < 12 * many.length, `${text.length} bytes`);
  for (const damaged of ['{}', 'not json', '{"states":5,"of":[[9,9]]}']) assert.deepEqual(unpackNodes(['n1'], damaged).get('n1') ?? { plugins: [] }, { plugins: [] }, damaged);
});
