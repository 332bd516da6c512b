import { randomBytes } from 'node:crypto';
import { openStore, type Store } from '../../plugins/sdk/store.ts';
import { outpostSignature } from '../../plugins/sdk/signature.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import type { Counter } from '../../plugins/sdk/metrics.ts';

export interface Delivery {
  id: string;
  /** Orders deliveries: one in flight per key, FIFO. */
  key: string;
  n: number;
  url: string;
  body: string;
  contentType: string;
  event: string;
  secret?: string;
  state: 'pending' | 'delivered' | 'dead';
  attempts: number;
  createdAt: number;
  nextAt: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: number;
}

export type PublicDelivery = Omit<Delivery, 'secret' | 'body'> & { body: string };

interface OutboxData {
  n: number;
  deliveries: Record<string, Delivery>;
}

export interface OutboxConfig {
  maxAgeMs: number;
  timeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

const RECENT_KEPT = 2000;

/**
 * Durable webhook outbox: a delivery is on disk before enqueue resolves; each key (subscription or
 * URL) has its own FIFO lane so a slow or dead receiver delays only itself.
 */
export class Outbox {
  private readonly lanes = new Map<string, { queue: Delivery[]; running: boolean; timer?: NodeJS.Timeout }>();
  /** Delivered records leave the store file (to history) but stay listable for a while. */
  private readonly recent: Delivery[] = [];
  private stopped = false;

  private constructor(
    private readonly store: Store<OutboxData>,
    private readonly cfg: OutboxConfig,
    private readonly log: Log,
    private readonly counters: { attempts: Counter; failures: Counter; dead: Counter },
  ) {}

  static async open(dataDir: string, cfg: OutboxConfig, log: Log, counters: Outbox['counters']): Promise<Outbox> {
    const store = await openStore<OutboxData>(dataDir, 'outbox', { n: 0, deliveries: {} }, { mode: 0o600 });
    const ob = new Outbox(store, cfg, log, counters);
    for (const d of Object.values(store.data.deliveries).sort((a, b) => a.n - b.n)) {
      if (d.state === 'pending') ob.lane(d.key).queue.push(d);
    }
    return ob;
  }

  start(): void {
    for (const key of this.lanes.keys()) this.pump(key);
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.lanes.values()) clearTimeout(l.timer);
  }

  async enqueue(items: Array<{ url: string; body: string; contentType?: string; secret?: string; key?: string; event: string }>): Promise<string[]> {
    const now = Date.now();
    const created: Delivery[] = [];
    await this.store.update((d) => {
      for (const it of items) {
        const rec: Delivery = {
          id: `dl_${randomBytes(8).toString('hex')}`,
          key: it.key ?? it.url,
          n: ++d.n,
          url: it.url,
          body: it.body,
          contentType: it.contentType ?? 'application/json',
          event: it.event,
          secret: it.secret,
          state: 'pending',
          attempts: 0,
          createdAt: now,
          nextAt: now,
        };
        d.deliveries[rec.id] = rec;
        created.push(rec);
      }
    });
    for (const rec of created) {
      this.lane(rec.key).queue.push(rec);
      this.pump(rec.key);
    }
    return created.map((c) => c.id);
  }

  depth(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += l.queue.length;
    return n;
  }

  list(filter: { state?: string; limit?: number }): PublicDelivery[] {
    const all = [...Object.values(this.store.data.deliveries), ...this.recent];
    return all
      .filter((d) => !filter.state || d.state === filter.state)
      .sort((a, b) => b.n - a.n)
      .slice(0, filter.limit ?? 100)
      .map(publicView);
  }

  get(id: string): PublicDelivery | undefined {
    const d = this.store.data.deliveries[id] ?? this.recent.find((r) => r.id === id);
    return d && publicView(d);
  }

  /** Puts a dead (or delivered) delivery back in its lane for another round of attempts. */
  async retry(id: string): Promise<PublicDelivery | undefined> {
    let d = this.store.data.deliveries[id];
    if (!d) {
      const i = this.recent.findIndex((r) => r.id === id);
      if (i < 0) return undefined;
      d = this.recent.splice(i, 1)[0];
    }
    if (d.state === 'pending') return publicView(d);
    const rec = d;
    await this.store.update((data) => {
      rec.state = 'pending';
      rec.attempts = 0;
      rec.createdAt = Date.now();
      rec.nextAt = Date.now();
      data.deliveries[rec.id] = rec;
    });
    const lane = this.lane(rec.key);
    lane.queue.push(rec);
    lane.queue.sort((a, b) => a.n - b.n);
    this.pump(rec.key);
    return publicView(rec);
  }

  private lane(key: string) {
    let l = this.lanes.get(key);
    if (!l) {
      l = { queue: [], running: false };
      this.lanes.set(key, l);
    }
    return l;
  }

  private pump(key: string): void {
    const lane = this.lane(key);
    if (lane.running || this.stopped) return;
    const head = lane.queue[0];
    if (!head) return;
    const wait = head.nextAt - Date.now();
    clearTimeout(lane.timer);
    if (wait > 0) {
      lane.timer = setTimeout(() => this.pump(key), wait);
      return;
    }
    lane.running = true;
    void this.attempt(head).finally(() => {
      lane.running = false;
      if (head.state !== 'pending') lane.queue.shift();
      this.pump(key);
    });
  }

  private async attempt(d: Delivery): Promise<void> {
    const t = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': d.contentType,
      'user-agent': 'outpost-webhooks',
      'x-outpost-delivery': d.id,
      'x-outpost-event': d.event,
    };
    if (d.secret) headers['x-outpost-signature'] = outpostSignature(d.secret, d.body, t);
    let status: number | undefined;
    let error: string | undefined;
    this.counters.attempts.inc({ event: d.event });
    try {
      const res = await fetch(d.url, { method: 'POST', headers, body: d.body, signal: AbortSignal.timeout(this.cfg.timeoutMs), redirect: 'manual' });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status >= 300) error = `receiver answered HTTP ${status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      error = e.name === 'TimeoutError' ? `timed out after ${this.cfg.timeoutMs} ms` : e.cause?.code ?? e.message;
    }
    const now = Date.now();
    if (!error) {
      await this.store.update((data) => {
        d.state = 'delivered';
        d.attempts += 1;
        d.lastStatus = status;
        d.lastError = undefined;
        d.deliveredAt = now;
        delete data.deliveries[d.id];
      });
      this.remember(d);
      await this.store.archive([publicView(d)]);
      return;
    }
    this.counters.failures.inc({ event: d.event });
    const dead = now - d.createdAt >= this.cfg.maxAgeMs;
    const delay = Math.min(this.cfg.maxDelayMs, this.cfg.baseDelayMs * 2 ** Math.min(d.attempts, 30));
    await this.store.update(() => {
      d.attempts += 1;
      d.lastStatus = status;
      d.lastError = error;
      if (dead) d.state = 'dead';
      // Full jitter in [delay/2, delay] keeps many failing lanes from retrying in lockstep.
      else d.nextAt = now + Math.round(delay / 2 + (Math.random() * delay) / 2);
    });
    if (dead) {
      this.counters.dead.inc({ event: d.event });
      this.log.warn({ delivery: d.id, url: redactUrl(d.url), error }, 'webhook delivery dead after max age');
    }
  }

  private remember(d: Delivery): void {
    this.recent.push(d);
    if (this.recent.length > RECENT_KEPT) this.recent.splice(0, this.recent.length - RECENT_KEPT);
  }
}

function publicView(d: Delivery): PublicDelivery {
  const { secret: _s, ...rest } = d;
  return { ...rest, url: redactUrl(d.url) };
}

/** URLs may carry credentials (user:pass@ or ?token=); logs and the REST log show them without. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    for (const k of [...u.searchParams.keys()]) if (/token|secret|key|pass|sig/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}
