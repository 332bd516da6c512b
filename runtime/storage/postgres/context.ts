/**
 * What every PostgreSQL store, log and queue of one backend shares: the pool, the owner name its
 * leases carry, and one health entry for the database (down is down for all of them; the first good
 * write or ping clears it).
 */
import type { Log } from '../../../plugins/sdk/log.ts';
import type { StorageHealth } from '../../../plugins/sdk/durable/health.ts';
import { StorageWriteError } from '../../../plugins/sdk/durable/storage-error.ts';
import type { Database } from './database.ts';

export class PgContext {
  /** The name /readyz lists a database problem under. */
  readonly healthName: string;

  constructor(
    readonly db: Database,
    /** Who holds this process's queue leases; stable across restarts of the same controller. */
    readonly owner: string,
    readonly log: Log,
    private readonly health: StorageHealth | undefined,
  ) {
    this.healthName = `PostgreSQL at ${db.where}`;
  }

  /** A failure as the caller sees it (typed, naming the store), recorded in the health. */
  failed(store: string, err: unknown): StorageWriteError {
    const e = this.db.storageError(store, err);
    this.health?.failed(new StorageWriteError(this.healthName, e.cause));
    return e;
  }

  ok(): void {
    this.health?.ok(this.healthName);
  }

  /** Open stores by name: what another process's commit to that name must refresh (store-listener.ts). */
  private readonly followers = new Map<string, Set<Follower>>();

  follow(name: string, f: Follower): () => void {
    let set = this.followers.get(name);
    if (!set) this.followers.set(name, (set = new Set()));
    set.add(f);
    return () => {
      set.delete(f);
      if (set.size === 0 && this.followers.get(name) === set) this.followers.delete(name);
    };
  }

  followedNames(): string[] {
    return [...this.followers.keys()];
  }

  /** The database holds `version` of store `name`: the stores open under that name catch up. */
  refresh(name: string, version: number): void {
    for (const f of this.followers.get(name) ?? []) void f.refresh(version);
  }
}

export interface Follower {
  refresh(version?: number): Promise<void>;
}
