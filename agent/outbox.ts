import { openStore, type Store } from '../plugins/sdk/store.ts';

export interface OutboxItem {
  seq: number;
  plugin: string;
  type: string;
  data: unknown;
  ts: number;
}

interface OutboxData {
  /** Last seq handed out; never reused, so the controller's dedup stays sound across restarts. */
  seq: number;
  items: OutboxItem[];
  dropped: number;
}

/** Reports waiting for the controller's ack, on disk before report() resolves. */
export class AgentOutbox {
  private constructor(
    private readonly store: Store<OutboxData>,
    private readonly max: number,
  ) {}

  static async open(dataDir: string, max: number): Promise<AgentOutbox> {
    return new AgentOutbox(await openStore<OutboxData>(dataDir, 'outbox', { seq: 0, items: [], dropped: 0 }), max);
  }

  async add(plugin: string, type: string, data: unknown): Promise<OutboxItem> {
    return this.store.update((d) => {
      const item = { seq: ++d.seq, plugin, type, data, ts: Date.now() };
      d.items.push(item);
      if (d.items.length > this.max) {
        const n = d.items.length - this.max;
        d.items.splice(0, n);
        d.dropped += n;
      }
      return item;
    });
  }

  /** Forgets everything up to seq (acked, or already applied as the welcome says). */
  async ack(seq: number): Promise<void> {
    const items = this.store.data.items;
    if (items.length === 0 || items[0].seq > seq) return;
    await this.store.update((d) => {
      let i = 0;
      while (i < d.items.length && d.items[i].seq <= seq) i++;
      d.items.splice(0, i);
    });
  }

  /** Never hand out a seq the controller has already applied (e.g. after the state dir was restored from an old backup). */
  async bumpSeq(atLeast: number): Promise<void> {
    if (this.store.data.seq >= atLeast) return;
    await this.store.update((d) => {
      d.seq = atLeast;
    });
  }

  /** Items with seq greater than after, oldest first, at most limit. */
  after(after: number, limit: number): OutboxItem[] {
    const out: OutboxItem[] = [];
    for (const it of this.store.data.items) {
      if (it.seq > after) {
        out.push(it);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  size(): number {
    return this.store.data.items.length;
  }

  dropped(): number {
    return this.store.data.dropped;
  }
}
