import { randomUUID } from 'node:crypto';
import { PART_BYTES, wireBytes } from '../wire-size.ts';

/** One registered connection as the controller's routing tables need it: [key, mid, room]. */
export type ConnTuple = [key: string, mid: string, room: string];

/**
 * Batched deltas for the controller: the latest state of every key that changed since the last batch
 * (connected or moved: an upsert; gone: a remove), never one message per connection. `seq` counts
 * batches of this gateway instance (`epoch`) so the receiver can tell a lost batch and ask for a snapshot.
 */
export interface ChangeBatch {
  epoch: string;
  seq: number;
  upserts: ConnTuple[];
  removes: string[];
  /** Registered connections and distinct client IPs after this batch. */
  conns: number;
  ips: number;
}

/** Every registered connection, for the periodic resync; deltas after it carry seq > this seq. */
export interface Snapshot {
  epoch: string;
  seq: number;
  conns: ConnTuple[];
  ips: number;
}

export type ChangeSink = (batch: ChangeBatch) => Promise<void> | void;

/** How long a registration waits for the batch carrying it before op 8 goes out anyway. */
const ACK_WAIT_MS = 2000;
/** A batch leaves at once past this many changed keys, or this many bytes: bounded memory under churn, and under the link's message bound. */
const MAX_PENDING = 2000;
const MAX_PENDING_BYTES = PART_BYTES;

export class ChangeFeed {
  readonly epoch = randomUUID();
  private seq = 0;
  private pending = new Map<string, ConnTuple | null>();
  /** Wire bytes of what is pending (a key noted twice counts twice: the batch only leaves earlier). */
  private pendingBytes = 0;
  private waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly sink: ChangeSink | undefined,
    private readonly intervalMs: number,
    private readonly counts: () => { conns: number; ips: number },
    private readonly onSinkError: (err: unknown) => void,
  ) {}

  /** Records a key's new state (tuple) or its removal (null). */
  note(key: string, tuple: ConnTuple | null): void {
    if (!this.sink) return;
    this.pending.set(key, tuple);
    this.pendingBytes += wireBytes(tuple ?? key);
    // Synchronously: a turn that registers thousands of connections must not grow one batch past the link's bound.
    if (this.pendingBytes >= MAX_PENDING_BYTES) this.flush();
    else if (this.pending.size >= MAX_PENDING) this.flushSoon();
    else this.timer ??= setTimeout(() => this.flush(), this.intervalMs).unref();
  }

  /**
   * Resolves once the batch holding every change noted so far was handed over and its sink settled
   * (the controller has the key before op 8). Registrations share the batch of their I/O turn.
   */
  delivered(): Promise<void> {
    if (!this.sink) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ACK_WAIT_MS).unref();
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.flushSoon();
    });
  }

  private flushSoon(): void {
    this.immediate ??= setImmediate(() => this.flush());
  }

  /** Sends what is pending now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    if (!this.sink || (this.pending.size === 0 && waiters.length === 0)) return;
    const upserts: ConnTuple[] = [];
    const removes: string[] = [];
    for (const [key, tuple] of this.pending) {
      if (tuple) upserts.push(tuple);
      else removes.push(key);
    }
    this.pending.clear();
    this.pendingBytes = 0;
    const { conns, ips } = this.counts();
    const settle = () => waiters.forEach((w) => w());
    try {
      Promise.resolve(this.sink({ epoch: this.epoch, seq: ++this.seq, upserts, removes, conns, ips })).then(settle, (err) => {
        this.onSinkError(err);
        settle();
      });
    } catch (err) {
      this.onSinkError(err);
      settle();
    }
  }

  /** Flushes pending deltas first, so the snapshot's seq orders it against the batches around it. */
  snapshot(conns: ConnTuple[]): Snapshot {
    this.flush();
    return { epoch: this.epoch, seq: this.seq, conns, ips: this.counts().ips };
  }

  close(): void {
    clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    for (const w of this.waiters.splice(0)) w();
  }
}
