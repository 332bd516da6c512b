import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { parsePrometheus, valueOf } from './helpers/prom.ts';

test('rendering: labels escaped and sorted, a label set listed twice shown once (the first), renderAsync the same text', async () => {
  const m = new MetricsRegistry();
  m.gaugeFn('outpost_test_nodes', 'Test gauge.', () => [
    [{ node_id: 'n1', node: 'plain' }, 1],
    [{ node: 'quo"te\\back\nline', node_id: 'n2' }, 2],
    [{ node_id: 'n1', node: 'plain' }, 3],
  ]);
  m.counter('outpost_test_things', 'Test counter.').inc({ kind: 'a' }, 2);
  const text = m.render();
  assert.match(text, /^outpost_test_nodes\{node="plain",node_id="n1"\} 1$/m);
  assert.match(text, /^outpost_test_nodes\{node="quo\\"te\\\\back\\nline",node_id="n2"\} 2$/m);
  assert.equal(text.split('\n').filter((l) => l.startsWith('outpost_test_nodes{')).length, 2);
  const fams = parsePrometheus(text);
  assert.equal(valueOf(fams, 'outpost_test_nodes', { node: 'quo"te\\back\nline' }), 2);
  assert.equal(valueOf(fams, 'outpost_test_things_total', { kind: 'a' }), 2);
  assert.equal(await m.renderAsync({ every: 2 }), text);
});

test('a reader giving a non-string label (a Secret) fails the render naming the label', () => {
  const m = new MetricsRegistry();
  m.gaugeFn('outpost_test_bad', 'Test gauge.', () => [[{ node: { secret: true } as unknown as string }, 1]]);
  assert.throws(() => m.render(), /label "node" of outpost_test_bad must be a string/);
});

test('renderAsync gives the event loop back while rendering many series', async () => {
  const m = new MetricsRegistry();
  const rows: Array<[Record<string, string>, number]> = Array.from({ length: 20_000 }, (_, i) => [{ node: `n${i}` }, i]);
  m.gaugeFn('outpost_test_many', 'Test gauge.', () => rows);
  let ran = 0;
  const tick = setInterval(() => ran++, 0);
  const pending = m.renderAsync({ every: 1000 });
  const text = await pending;
  clearInterval(tick);
  assert.equal(text, m.render());
  assert.ok(ran > 0, 'a timer ran during the render');
});

test('perScrape: the families of one scrape share one computation; the next scrape computes again', async () => {
  const m = new MetricsRegistry();
  let calls = 0;
  const shared = m.perScrape(() => ++calls);
  m.gaugeFn('outpost_test_a', 'A.', () => shared());
  m.gaugeFn('outpost_test_b', 'B.', () => shared());
  assert.match(m.render(), /outpost_test_a 1\n[^]*outpost_test_b 1\n/);
  assert.match(await m.renderAsync({ every: 1 }), /outpost_test_a 2\n[^]*outpost_test_b 2\n/);
  assert.equal(shared(), 3, 'outside a scrape it computes on every call');
});

test('renderAsync with skip prefixes leaves those families out without reading them', async () => {
  const m = new MetricsRegistry();
  let reads = 0;
  m.gaugeFn('outpost_test_node_up', 'Per node.', () => (reads++, [[{ node: 'a' }, 1]]));
  m.gaugeFn('outpost_test_nodes', 'Counts.', () => 3);
  const text = await m.renderAsync({ every: 10, skip: ['outpost_test_node_'] });
  assert.equal(reads, 0);
  assert.doesNotMatch(text, /outpost_test_node_up/);
  assert.match(text, /^outpost_test_nodes 3$/m);
});
