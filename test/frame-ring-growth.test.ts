/**
 * A link's ring of waiting frames starts small and grows up to its capacity as frames wait (most links
 * never queue one): growing must keep the frames in order, also when the ring had wrapped around, and the
 * capacity must still bound it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameRing } from '../runtime/frame-ring.ts';
import type { EncodedFrame } from '../runtime/link-codec.ts';

const frame = (n: number): EncodedFrame => ({ data: Buffer.from(String(n)), binary: false, bytes: 1, plugin: `p${n}` });
const names = (frames: Array<EncodedFrame | undefined>) => frames.map((f) => f?.plugin);

test('a ring that wrapped around grows past its first slots with every frame in order', () => {
  const ring = new FrameRing(100, 1_000_000);
  let next = 0;
  // Wrap the head around the first 16 slots: 10 in, 7 out, 10 more in.
  for (let i = 0; i < 10; i++) ring.push(frame(next++));
  for (let i = 0; i < 7; i++) ring.shift();
  for (let i = 0; i < 10; i++) ring.push(frame(next++));
  // 13 waiting; 50 more make it grow twice (16 -> 32 -> 64 slots).
  for (let i = 0; i < 50; i++) assert.deepEqual(ring.push(frame(next++)), []);
  assert.equal(ring.size, 63);
  assert.equal(ring.bytes, 63);
  assert.deepEqual(names(ring.clear()), Array.from({ length: 63 }, (_, i) => `p${i + 7}`));
});

test('a grown ring still evicts the oldest at its capacity', () => {
  const ring = new FrameRing(40, 1_000_000);
  for (let i = 0; i < 40; i++) assert.deepEqual(ring.push(frame(i)), []);
  assert.deepEqual(names(ring.push(frame(40))), ['p0']);
  assert.deepEqual(names(ring.push(frame(41))), ['p1']);
  assert.equal(ring.size, 40);
  assert.equal(ring.peek()?.plugin, 'p2');
  assert.deepEqual(names(ring.clear()), Array.from({ length: 40 }, (_, i) => `p${i + 2}`));
});
