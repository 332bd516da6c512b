/**
 * This controller among others on one database: its id, the singleton lease and its link presence.
 * On files there is one controller per data dir: the lease is held from start to stop (epoch 1) and
 * presence is this controller's own links, so a single controller behaves exactly as before.
 */
import type { Log } from '../plugins/sdk/log.ts';
import type { StorageHealth } from '../plugins/sdk/durable/health.ts';
import { controllerId } from '../runtime/cluster/controller-id.ts';
import { ManualLease, SingletonLease, type Lease, type LeaseView } from '../runtime/cluster/lease.ts';
import { runSingleton, type SingletonStart } from '../runtime/cluster/singleton.ts';
import type { ControllerStorage } from '../runtime/storage/controller-storage.ts';
import type { ControllerPresence, LinkedNode, RemoteNode } from '../runtime/cluster/presence.ts';

export interface ClusterStatus {
  controller: { id: string };
  lease: Omit<LeaseView, 'expiresAt' | 'self'> & { expiresAt: string | null; ttlMs: number | null };
  controllers: Array<{ id: string; self: boolean; links: number; nodes: string[]; url?: string; expiresAt: string | null }>;
  presenceError?: string;
  store: { kind: string; where?: string; healthy: boolean; problems: Array<{ store: string; code: string; message: string }> };
}

export interface ControllerCluster {
  id: string;
  lease: Lease;
  /** Runs start for every term of the lease held here; returns its stop. */
  singleton(what: string, start: SingletonStart): () => Promise<void>;
  /** Node ids linked to other live controllers (empty on files). */
  linkedElsewhere(): Set<string>;
  /** The other live controller holding a node's link, with the node's plugin states there (undefined on files). */
  linkedAt(id: string): RemoteNode | undefined;
  /** Other live controllers and where they answer (empty on files). */
  peers(): Array<{ id: string; url?: string; links: number }>;
  /** A link here opened or closed, or a linked node's plugin states changed: presence is rewritten soon. */
  linksChanged(): void;
  /** fn is called with the ids of other controllers that went away (died or stopped); never on files. */
  onPeersLost(fn: (ids: string[]) => void): () => void;
  status(): ClusterStatus;
  /** Starts taking the lease and writing presence (after the work gated on it is registered). */
  start(): void;
  stop(): Promise<void>;
}

export interface ClusterDeps {
  dataDir: string;
  store: ControllerStorage;
  leaseTtlMs: number;
  /** Presence is written every heartbeat interval. */
  intervalMs: number;
  links: () => string[];
  /** What this controller says in its presence of a node linked here. */
  linked: (id: string) => LinkedNode | undefined;
  url: () => string | undefined;
  health: StorageHealth;
  log: Log;
}

export async function openCluster(d: ClusterDeps): Promise<ControllerCluster> {
  const id = await controllerId(d.dataDir);
  const log = d.log.child({ controller: id });
  let lease: Lease;
  let startLease: () => void;
  let presence: import('../runtime/cluster/presence.ts').Presence | undefined;
  let offPresenceNotice: (() => void) | undefined;
  if (d.store.db) {
    const [{ PgLeaseBackend }, { Presence, PRESENCE_NOTICE }] = await Promise.all([import('../runtime/cluster/pg-lease.ts'), import('../runtime/cluster/presence.ts')]);
    const l = new SingletonLease(new PgLeaseBackend(d.store.db, d.leaseTtlMs), id, { ttlMs: d.leaseTtlMs, log });
    lease = l;
    startLease = () => l.start();
    const p = new Presence(d.store.db, id, d.links, d.linked, d.url, d.intervalMs, log);
    presence = p;
    offPresenceNotice = d.store.onNotified?.(PRESENCE_NOTICE, (rev) => p.notified(rev));
  } else {
    const l = new ManualLease('singleton', id);
    lease = l;
    startLease = () => void l.grant();
  }
  const stops = new Set<() => Promise<void>>();
  const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);
  return {
    id,
    lease,
    singleton(what, start) {
      const stop = runSingleton(lease, what, log, start);
      stops.add(stop);
      return async () => {
        stops.delete(stop);
        await stop();
      };
    },
    linkedElsewhere: () => presence?.elsewhere() ?? new Set(),
    linkedAt: (node) => presence?.linkedAt(node),
    peers: () => presence?.others() ?? [],
    linksChanged: () => presence?.changed(),
    onPeersLost: (fn) => presence?.onLost(fn) ?? (() => undefined),
    status() {
      const v = lease.view();
      const seen: ControllerPresence[] = presence ? presence.view().controllers : [{ id, links: d.links(), url: d.url(), expiresAt: 0 }];
      // This controller's links as it holds them now, whatever its last presence write said.
      const all = seen.some((c) => c.id === id) ? seen : [...seen, { id, links: d.links(), url: d.url(), expiresAt: 0 }];
      const problems = d.health.problems().map((p) => ({ store: p.store, code: p.code, message: p.message }));
      const pErr = presence?.view().error;
      return {
        controller: { id },
        lease: { name: v.name, held: v.held, holder: v.holder, epoch: v.epoch, expiresAt: iso(v.expiresAt), ttlMs: lease instanceof SingletonLease ? lease.ttlMs : null, ...(v.error ? { error: v.error } : {}) },
        controllers: all.map((c) => {
          const links = c.id === id ? d.links() : c.links;
          return { id: c.id, self: c.id === id, links: links.length, nodes: links, ...(c.url ? { url: c.url } : {}), expiresAt: iso(c.expiresAt) };
        }),
        ...(pErr ? { presenceError: pErr } : {}),
        store: { kind: d.store.kind, ...(d.store.where ? { where: d.store.where } : {}), healthy: problems.length === 0, problems },
      };
    },
    start() {
      startLease();
      presence?.start();
    },
    async stop() {
      await Promise.all([...stops].map((s) => s()));
      await lease.stop();
      offPresenceNotice?.();
      await presence?.stop();
    },
  };
}
