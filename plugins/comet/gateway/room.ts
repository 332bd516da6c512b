import type { PushMessage } from '../protocol/push-bytes.ts';
import type { Session } from './session.ts';

export interface RoomBatching {
  /** How long the first message of a batch may wait for others (0: only those of the same I/O turn). */
  windowMs: number;
  /** Messages per batch; a full batch leaves at once. */
  maxMessages: number;
  /** Bytes of inner frames per batch; a full batch leaves at once. */
  maxBytes: number;
}

/**
 * A room's local members and its pending batch. goim's job batches room pushes (up to 20 messages
 * or 1 s) into one op-9 frame; here a batch leaves after `windowMs` (≤ 50 ms) or when full, and is
 * encoded once for every member.
 */
export class Room {
  readonly members = new Set<Session>();
  /** The cluster-wide count from the controller; 0 until known (goim's AllOnline). */
  allOnline = 0;
  private batch: PushMessage[] = [];
  private batchBytes = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(
    readonly id: string,
    private readonly batching: RoomBatching,
    private readonly send: (room: Room, messages: PushMessage[]) => void,
  ) {}

  /** goim's Room.OnlineNum: the cluster count when known, else the local one. */
  online(): number {
    return this.allOnline > 0 ? this.allOnline : this.members.size;
  }

  push(m: PushMessage): void {
    this.batch.push(m);
    this.batchBytes += 16 + m.body.length;
    if (this.batch.length >= this.batching.maxMessages || this.batchBytes >= this.batching.maxBytes) this.flush();
    else if (!this.timer) this.timer = this.batching.windowMs > 0 ? setTimeout(() => this.flush(), this.batching.windowMs) : setImmediate(() => this.flush());
  }

  flush(): void {
    this.clearTimer();
    if (this.batch.length === 0) return;
    const messages = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    this.send(this, messages);
  }

  /** Drops the pending batch (the room emptied or the gateway stops). */
  discard(): void {
    this.clearTimer();
    this.batch = [];
    this.batchBytes = 0;
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = undefined;
  }
}
