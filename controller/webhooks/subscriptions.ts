import { createHash, randomBytes } from 'node:crypto';
import { openStore, refreshStore, type Store } from '../../plugins/sdk/store.ts';
import { secretUrl } from '../../plugins/sdk/secret.ts';
import { checkDeliveryUrl, type EnqueueItem, type Outbox } from './outbox.ts';
import type { RecordedEvent } from '../event-log.ts';

export interface Subscription {
  id: string;
  url: string;
  secret: string;
  events: string[];
  createdAt: number;
  /**
   * Seq of the last event recorded when the subscription was made: it receives events after that one
   * only, also when the fan-out replays events after a crash. Absent on subscriptions made before the
   * event log (they take every event the fan-out has not handled yet).
   */
  sinceSeq?: number;
  description?: string;
}

/** A subscription as listed: no secret, URL credentials masked. */
export type PublicSubscription = Omit<Subscription, 'secret'>;

interface SubsData {
  subs: Record<string, Subscription>;
}

export const CORE_EVENTS = ['node.up', 'node.down', 'node.enrolled', 'node.deleted', 'plugin.failed', 'plugin.recovered', 'test.ping'];

const SECRET_MIN = 16;
const SECRET_MAX = 256;
const MAX_SUBSCRIPTIONS = 1000;
const EVENT_NAME = /^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_*-]+)*$/i;

/** Webhook subscriptions, and which deliveries an event makes for them. */
export class Subscriptions {
  private readonly known = new Set<string>(CORE_EVENTS);

  private constructor(
    private readonly store: Store<SubsData>,
    private readonly outbox: Outbox,
    private readonly lastSeq: () => number,
  ) {}

  /** `lastSeq`: the event log's latest seq, which a new subscription starts after. */
  static async open(dataDir: string, outbox: Outbox, lastSeq: () => number): Promise<Subscriptions> {
    const subs = new Subscriptions(await openStore<SubsData>(dataDir, 'webhooks', { subs: {} }), outbox, lastSeq);
    // A crash between deleting a subscription and stopping its deliveries must not leave them running.
    await outbox.cancel((d) => {
      const sub = subscriptionOf(d);
      return sub !== undefined && !subs.store.data.subs[sub];
    }, 'its subscription was deleted');
    return subs;
  }

  registerEvents(names: string[]): void {
    for (const n of names) this.known.add(n);
  }

  knownEvents(): string[] {
    return [...this.known].sort();
  }

  has(id: string): boolean {
    return id in this.store.data.subs;
  }

  /** Validates and stores a subscription; throws a message naming the bad field. */
  async add(input: { url: unknown; secret: unknown; events: unknown; description?: unknown }): Promise<Subscription> {
    const u = checkDeliveryUrl(input.url);
    const events = this.parseEvents(input.events);
    let secret: string;
    if (input.secret === undefined || input.secret === null || input.secret === '') secret = randomBytes(24).toString('base64url');
    else if (typeof input.secret !== 'string') throw new Error('secret must be a string');
    else if (input.secret.length < SECRET_MIN || input.secret.length > SECRET_MAX) throw new Error(`secret must be ${SECRET_MIN} to ${SECRET_MAX} characters long, got ${input.secret.length}`);
    else secret = input.secret;
    if (input.description !== undefined && (typeof input.description !== 'string' || input.description.length > 200)) throw new Error('description must be a string of at most 200 characters');
    if (Object.keys(this.store.data.subs).length >= MAX_SUBSCRIPTIONS) throw new Error(`at most ${MAX_SUBSCRIPTIONS} webhook subscriptions; delete some first`);
    const sub: Subscription = { id: `wh_${randomBytes(6).toString('hex')}`, url: u.toString(), secret, events, createdAt: Date.now(), sinceSeq: this.lastSeq(), ...(input.description ? { description: input.description as string } : {}) };
    await this.store.update((d) => {
      d.subs[sub.id] = sub;
    });
    return sub;
  }

  /** Accepts an array or a comma-separated string; `*` and `prefix.*` patterns are allowed. */
  private parseEvents(raw: unknown): string[] {
    const events = raw === undefined || raw === null || raw === '' ? ['*'] : typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
    if (!Array.isArray(events) || events.length === 0 || events.length > 100 || !events.every((e) => typeof e === 'string')) throw new Error('events must be a non-empty list of event names (an array, or a comma-separated string)');
    const unknown = (events as string[]).filter((e) => {
      if (e === '*') return false;
      if (!EVENT_NAME.test(e)) return true;
      if (e.endsWith('.*')) return ![...this.known].some((k) => k.startsWith(e.slice(0, -1)));
      return !this.known.has(e);
    });
    if (unknown.length) throw new Error(`unknown event name(s): ${unknown.map((e) => JSON.stringify(e.slice(0, 60))).join(', ')}; known: ${this.knownEvents().join(', ')}`);
    return [...new Set(events as string[])];
  }

  list(): PublicSubscription[] {
    return Object.values(this.store.data.subs).map(({ secret: _s, sinceSeq: _q, ...rest }) => ({ ...rest, url: String(secretUrl(rest.url)) }));
  }

  /** Deletes the subscription and stops its pending deliveries (they turn dead, visible in the log). */
  async remove(id: string): Promise<boolean> {
    if (!this.store.data.subs[id]) return false;
    await this.store.update((d) => {
      delete d.subs[id];
    });
    await this.outbox.cancel((d) => subscriptionOf(d) === id, `subscription ${id} was deleted`);
    return true;
  }

  /** Takes in subscriptions other controllers stored until now: the fan-out's deliveries then miss none made before an event. */
  refresh(): Promise<void> {
    return refreshStore(this.store);
  }

  /**
   * One delivery per subscription that wants the event and existed before it. The id derives from
   * event and subscription, so the same event fanned out again (a replay after a crash) is recognised
   * by the outbox instead of queued twice.
   */
  deliveriesFor(e: RecordedEvent): EnqueueItem[] {
    const subs = Object.values(this.store.data.subs).filter((s) => (s.sinceSeq ?? 0) < e.seq && s.events.some((p) => p === '*' || p === e.event || (p.endsWith('.*') && e.event.startsWith(p.slice(0, -1)))));
    if (subs.length === 0) return [];
    const body = JSON.stringify({ id: e.id, event: e.event, ts: e.ts, data: e.data });
    return subs.map((s) => ({ id: deliveryId(e.id, s.id), url: s.url, body, secret: s.secret, key: s.id, subscription: s.id, event: e.event }));
  }
}

function deliveryId(eventId: string, subId: string): string {
  return `dl_${createHash('sha256').update(`${eventId}/${subId}`).digest('hex').slice(0, 16)}`;
}

/** Subscription deliveries before the `subscription` field existed are recognised by their lane key. */
function subscriptionOf(d: { subscription?: string; key: string }): string | undefined {
  return d.subscription ?? (d.key.startsWith('wh_') ? d.key : undefined);
}
