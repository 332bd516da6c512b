import { openStore, type Store } from '../plugins/sdk/store.ts';
import type { Log } from '../plugins/sdk/log.ts';

export interface RecentEvent {
  ts: string;
  event: string;
  data: unknown;
}

/**
 * A ring of the latest bus events, for the REST event log and the dashboard. Kept on disk so an
 * operator who restarts the controller after an incident still sees what led up to it.
 */
export class RecentEvents {
  private constructor(
    private readonly store: Store<{ events: RecentEvent[] }>,
    private readonly size: number,
    private readonly log: Log,
  ) {}

  static async open(dataDir: string, log: Log, size = 500): Promise<RecentEvents> {
    const store = await openStore<{ events: RecentEvent[] }>(dataDir, 'recent-events', { events: [] });
    return new RecentEvents(store, size, log);
  }

  private last: Promise<void> = Promise.resolve();

  /** Records the event; resolves once it is on disk. A failed write is logged, never thrown at the bus. */
  push(event: string, data: unknown): Promise<void> {
    this.last = this.write(event, data);
    return this.last;
  }

  /** Resolves once every event pushed so far is on disk. */
  settled(): Promise<void> {
    return this.last;
  }

  private async write(event: string, data: unknown): Promise<void> {
    try {
      await this.store.update((d) => {
        d.events.push({ ts: new Date().toISOString(), event, data });
        if (d.events.length > this.size) d.events.splice(0, d.events.length - this.size);
      });
    } catch (err) {
      this.log.error({ err: (err as Error).message, event }, 'could not record event');
    }
  }

  list(limit: number): RecentEvent[] {
    return this.store.data.events.slice(-limit).reverse();
  }
}
