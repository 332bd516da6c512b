import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { parsePrometheus } from './helpers/prom.ts';

test('a histogram renders cumulative buckets, +Inf, _sum and _count per label set, valid exposition', () => {
  const m = new MetricsRegistry();
  const h = m.histogram('outpost_test_lateness_seconds', 'Lateness of a test timer.', [0.01, 0.1, 1]);
  for (const v of [0.005, 0.01, 0.05, 0.5, 3]) h.observe({ node: 'a' }, v);
  h.observe({ node: 'b' }, 0.2);
  const text = m.render();
  const fam = parsePrometheus(text).get('outpost_test_lateness_seconds')!;
  assert.equal(fam.type, 'histogram');
  const a = (suffix: string, le?: string) => fam.samples.find((s) => s.name === `outpost_test_lateness_seconds${suffix}` && s.labels.node === 'a' && s.labels.le === le)?.value;
  // A value equal to a bound falls in that bound's bucket (le = "less or equal").
  assert.deepEqual([a('_bucket', '0.01'), a('_bucket', '0.1'), a('_bucket', '1'), a('_bucket', '+Inf')], [2, 3, 4, 5]);
  assert.equal(a('_count'), 5);
  assert.ok(Math.abs(a('_sum')! - 3.565) < 1e-9);
  assert.match(text, /outpost_test_lateness_seconds_bucket\{le="\+Inf",node="b"\} 1/);
  assert.throws(() => m.histogram('outpost_test_bad', 'x', [1, 0.5]), /ascending/);
  assert.throws(() => m.histogram('outpost_test_lateness_seconds', 'x').observe({ node: 1 as unknown as string }, 1), /must be a string/);
});
