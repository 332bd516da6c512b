import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LoopDelay } from '../plugins/sdk/loop-delay.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('LoopDelay: 0 without samples; a blocked loop shows; the timer resolution is taken off', async () => {
  const none = new LoopDelay(10);
  assert.equal(none.percentileMs(99), 0);
  assert.equal(none.maxMs(), 0);

  const d = new LoopDelay(10).enable();
  const raw = monitorEventLoopDelay({ resolution: 10 });
  raw.enable();
  await sleep(50);
  const until = performance.now() + 150;
  while (performance.now() < until);
  await sleep(50);
  d.disable();
  raw.disable();
  assert.ok(d.maxMs() >= 100, `a 150 ms block reads ${d.maxMs()} ms`);
  // The raw histogram never reads below its resolution: its smallest sample is a whole tick.
  assert.ok(raw.min / 1e6 >= 9, `raw min ${raw.min / 1e6} ms`);
  // Most ticks of a 250 ms run are on time: net of the resolution they read ~0, raw they read ~10.
  assert.ok(d.percentileMs(1) < 5, `p1 reads ${d.percentileMs(1)} ms: the resolution is not taken off`);
  d.reset();
  assert.equal(d.maxMs(), 0);
});
