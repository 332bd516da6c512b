import type { EncodedFrame } from './link-codec.ts';

/**
 * Frames waiting for one link's socket to drain, bounded by count and bytes. Pushing past either
 * bound evicts the oldest frames: for best-effort data (a push, a presence update) the newest is the
 * one still worth having.
 */
export class FrameRing {
  private readonly slots: Array<EncodedFrame | undefined>;
  private head = 0;
  private count = 0;
  private byteCount = 0;

  constructor(
    capacity: number,
    private readonly maxBytes: number,
  ) {
    this.slots = new Array(Math.max(1, capacity));
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Adds frame at the tail; returns the frames evicted from the head to make room (oldest first). */
  push(frame: EncodedFrame): EncodedFrame[] {
    const evicted: EncodedFrame[] = [];
    while (this.count > 0 && (this.count === this.slots.length || this.byteCount + frame.bytes > this.maxBytes)) evicted.push(this.shift()!);
    // A frame larger than the whole byte bound still goes in alone: the link limit already caps it.
    this.slots[(this.head + this.count) % this.slots.length] = frame;
    this.count++;
    this.byteCount += frame.bytes;
    return evicted;
  }

  peek(): EncodedFrame | undefined {
    return this.count ? this.slots[this.head] : undefined;
  }

  shift(): EncodedFrame | undefined {
    if (!this.count) return undefined;
    const f = this.slots[this.head]!;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    this.byteCount -= f.bytes;
    return f;
  }

  /** Empties the ring, returning what it held (oldest first). */
  clear(): EncodedFrame[] {
    const out: EncodedFrame[] = [];
    while (this.count) out.push(this.shift()!);
    return out;
  }
}
