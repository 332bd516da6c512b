/**
 * The part of a plugin context both hosts hand out: config, logger, abort signal, data dir,
 * metrics, timers and stores, each scoped to the plugin instance (runtime/scope.ts).
 */
import { join } from 'node:path';
import type { CommonContext } from '../plugins/sdk/contract.ts';
import { openLog } from '../plugins/sdk/durable/log.ts';
import { openQueue } from '../plugins/sdk/durable/queue.ts';
import type { StorageHealth } from '../plugins/sdk/durable/health.ts';
import type { Log } from '../plugins/sdk/log.ts';
import type { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { openStore, type Store } from '../plugins/sdk/store.ts';
import { withoutPrototypes } from '../plugins/sdk/json.ts';
import type { Route } from '../plugins/sdk/http.ts';
import { routeClaimed, type Claims } from './claims.ts';
import type { RouteTable } from './route-table.ts';
import type { Scope } from './scope.ts';
import { scopedMetrics } from './scoped-metrics.ts';
import { scopedScheduler } from './scoped-scheduler.ts';

export interface CommonHostDeps {
  /** The host's data dir; plugin files live in its `plugins/` folder. */
  dataDir: string;
  log: Log;
  metrics: MetricsRegistry;
  /** The host's tracker of failing stores (disk full shows in its health answer and metrics). */
  health?: StorageHealth;
}

export type CommonParts = CommonContext<unknown>;

const STORE_NAME = /^[a-z0-9][a-z0-9._-]{0,59}$/i;

/**
 * Files are `<plugin>.json` and `<plugin>.<name>.json` in one shared `plugins/` folder (the layout
 * data dirs already have, so upgrades keep their data): the plugin's name prefix is its namespace.
 * `config` is read through a getter, so a live update() is seen by every part of the plugin.
 */
export async function commonParts(name: string, claims: Claims, scope: Scope, deps: CommonHostDeps, config: () => unknown): Promise<CommonParts> {
  const dir = join(deps.dataDir, 'plugins');
  const log = deps.log.child({ plugin: name });
  const open = async <T extends object>(file: string, defaults: T): Promise<Store<T>> => {
    scope.assertOpen(`open store ${file}`);
    const store = await openStore<T>(dir, file, defaults);
    scope.add(`store ${file}`, () => store.close());
    return store;
  };
  const store = await open<Record<string, unknown>>(name, {});
  /** Logs and queues: files named after the plugin in its folder, closed with it. */
  const durable = async <D extends { close(): Promise<void> }>(what: string, file: string, open: (opts: { dir: string; log: Log; health?: StorageHealth }) => Promise<D>): Promise<D> => {
    scope.assertOpen(`open ${what} ${file}`);
    if (!STORE_NAME.test(file)) throw new Error(`${what} name "${file.slice(0, 60)}" must be letters, digits, ".", "_" or "-"`);
    const d = await open({ dir, log, health: deps.health });
    scope.add(`${what} ${file}`, () => d.close());
    return d;
  };
  return {
    get config() {
      return config();
    },
    log,
    signal: scope.signal,
    dataDir: dir,
    metrics: scopedMetrics(deps.metrics, claims, scope),
    schedule: scopedScheduler(scope, (err) => log.error({ err: (err as Error)?.message }, 'scheduled task failed')),
    store,
    openStore<T extends object>(nameOrDefaults: string | T, maybeDefaults?: T): Promise<Store<T>> {
      if (typeof nameOrDefaults !== 'string') {
        scope.assertOpen('open its store');
        // The same file and data as `store`, typed: a second handle on one file would lose writes.
        // As openStore fills defaults: maps keyed by client ids stay without prototypes.
        for (const [k, v] of Object.entries(nameOrDefaults)) if (!Object.hasOwn(store.data, k)) store.data[k] = withoutPrototypes(v);
        return Promise.resolve(store as unknown as Store<T>);
      }
      if (!STORE_NAME.test(nameOrDefaults)) return Promise.reject(new Error(`store name "${nameOrDefaults.slice(0, 60)}" must be letters, digits, ".", "_" or "-"`));
      return open<T>(`${name}.${nameOrDefaults}`, maybeDefaults as T);
    },
    openLog: (file, schema, opts) => durable('log', file, (host) => openLog(`${name}.${file}`, schema, { ...opts, ...host })),
    openQueue: (file, schema, opts) => durable('queue', file, (host) => openQueue(`${name}.${file}`, schema, { ...opts, ...host })),
  };
}

/** A plugin's routes on a host's route table: only paths inside its claims, turned to 503 when it stops. */
export function claimedRoutes(table: RouteTable, name: string, claims: Claims, scope: Scope): { mount(routes: Route[]): void } {
  return {
    mount(routes) {
      scope.assertOpen('mount routes');
      for (const r of routes) if (!routeClaimed(claims, r.path)) throw new Error(`plugin ${name} cannot mount ${r.path}: outside its route claims (${claims.routes.join(', ')})`);
      scope.add('routes', table.mount(name, routes));
    },
  };
}
