import type { EncodedFrame } from './link-codec.ts';

/**
 * Frames waiting for one link's socket to drain, bounded by count and bytes. Pushing past either
 * bound evicts the oldest frames: for best-effort data (a push, a presence update) the newest is the
 * one still worth having.
 */
/**
 * Slots a ring starts with; it doubles up to its capacity as frames wait. Most links never queue a
 * frame, and 4096 empty slots allocated up front for each link were 32 KB each: 320 MB of a
 * controller's RSS at 10,000 agents (the link bench).
 */
const INITIAL_SLOTS = 16;

export class FrameRing {
  private slots: Array<EncodedFrame | undefined>;
  private readonly capacity: number;
  private head = 0;
  private count = 0;
  private byteCount = 0;

  constructor(
    capacity: number,
    private readonly maxBytes: number,
  ) {
    this.capacity = Math.max(1, capacity);
    this.slots = new Array(Math.min(this.capacity, INITIAL_SLOTS));
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
    while (this.count > 0 && (this.count === this.capacity || this.byteCount + frame.bytes > this.maxBytes)) evicted.push(this.shift()!);
    if (this.count === this.slots.length) this.grow();
    // A frame larger than the whole byte bound still goes in alone: the link limit already caps it.
    this.slots[(this.head + this.count) % this.slots.length] = frame;
    this.count++;
    this.byteCount += frame.bytes;
    return evicted;
  }

  /** Twice the slots (at most capacity), the waiting frames moved to the front in order. */
  private grow(): void {
    const next = new Array<EncodedFrame | undefined>(Math.min(this.capacity, this.slots.length * 2));
    for (let i = 0; i < this.count; i++) next[i] = this.slots[(this.head + i) % this.slots.length];
    this.slots = next;
    this.head = 0;
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
