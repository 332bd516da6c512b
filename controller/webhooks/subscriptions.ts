import { randomBytes } from 'node:crypto';
import { openStore, type Store } from '../../plugins/sdk/store.ts';
import type { Outbox } from './outbox.ts';

export interface Subscription {
  id: string;
  url: string;
  secret: string;
  events: string[];
  createdAt: number;
  description?: string;
}

interface SubsData {
  subs: Record<string, Subscription>;
}

export const CORE_EVENTS = ['node.up', 'node.down', 'node.enrolled', 'node.deleted', 'plugin.failed', 'plugin.recovered'];

/** Webhook subscriptions and the fan-out of events into the outbox (one delivery per matching subscription). */
export class Subscriptions {
  private readonly known = new Set<string>(CORE_EVENTS);

  private constructor(
    private readonly store: Store<SubsData>,
    private readonly outbox: Outbox,
  ) {}

  static async open(dataDir: string, outbox: Outbox): Promise<Subscriptions> {
    return new Subscriptions(await openStore<SubsData>(dataDir, 'webhooks', { subs: {} }, { mode: 0o600 }), outbox);
  }

  registerEvents(names: string[]): void {
    for (const n of names) this.known.add(n);
  }

  knownEvents(): string[] {
    return [...this.known].sort();
  }

  /** Validates and stores a subscription; throws a message naming the bad field. */
  async add(input: { url: unknown; secret: unknown; events: unknown; description?: unknown }): Promise<Subscription> {
    if (typeof input.url !== 'string') throw new Error('url is required and must be a string');
    let u: URL;
    try {
      u = new URL(input.url);
    } catch {
      throw new Error(`url "${input.url.slice(0, 200)}" is not a valid URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`url must be http or https, not ${u.protocol.replace(':', '')}`);
    const events = input.events === undefined ? ['*'] : input.events;
    if (!Array.isArray(events) || events.length === 0 || !events.every((e) => typeof e === 'string')) throw new Error('events must be a non-empty array of event names');
    const unknown = events.filter((e) => e !== '*' && !this.known.has(e) && !(e.endsWith('.*') && [...this.known].some((k) => k.startsWith(e.slice(0, -1)))));
    if (unknown.length) throw new Error(`unknown event name(s): ${unknown.join(', ')}; known: ${this.knownEvents().join(', ')}`);
    let secret: string;
    if (input.secret === undefined) secret = randomBytes(24).toString('base64url');
    else if (typeof input.secret !== 'string' || input.secret.length < 16 || input.secret.length > 256) throw new Error('secret must be a string of 16 to 256 characters');
    else secret = input.secret;
    if (input.description !== undefined && (typeof input.description !== 'string' || input.description.length > 200)) throw new Error('description must be a string of at most 200 characters');
    const sub: Subscription = { id: `wh_${randomBytes(6).toString('hex')}`, url: u.toString(), secret, events: events as string[], createdAt: Date.now(), description: input.description as string | undefined };
    await this.store.update((d) => {
      d.subs[sub.id] = sub;
    });
    return sub;
  }

  list(): Array<Omit<Subscription, 'secret'>> {
    return Object.values(this.store.data.subs).map(({ secret: _s, ...rest }) => rest);
  }

  async remove(id: string): Promise<boolean> {
    if (!this.store.data.subs[id]) return false;
    await this.store.update((d) => {
      delete d.subs[id];
    });
    return true;
  }

  /** Queues the event for every subscription that wants it; resolves once the deliveries are on disk. */
  async emit(event: string, payload: unknown): Promise<void> {
    const subs = Object.values(this.store.data.subs).filter((s) => s.events.some((e) => e === '*' || e === event || (e.endsWith('.*') && event.startsWith(e.slice(0, -1)))));
    if (subs.length === 0) return;
    const id = `ev_${randomBytes(8).toString('hex')}`;
    const body = JSON.stringify({ id, event, ts: new Date().toISOString(), data: payload });
    await this.outbox.enqueue(subs.map((s) => ({ url: s.url, body, secret: s.secret, key: s.id, event })));
  }
}
