/**
 * The storage contract (test/helpers/store-contract.ts) on a real PostgreSQL 15: every place is a
 * fresh database and a data dir mounted on it, as a controller mounts its own. "The storage fails"
 * is the server stopped (connections cut, new ones refused) and started again; "another process" is
 * a second dir mounted on the same database with a pool of its own (a second controller).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { storeContract, type Place } from '../helpers/store-contract.ts';
import { tempDir } from '../helpers/cluster.ts';
import { postgresForFile } from './lib/postgres.ts';
import { openControllerStorage } from '../../runtime/storage/controller-storage.ts';
import { StoreConfig } from '../../runtime/storage/store-config.ts';
import { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import { createLog } from '../../plugins/sdk/log.ts';

const pg = postgresForFile();

async function mounted(url: string): Promise<Place> {
  const root = await tempDir('outpost-contract-pg-');
  const dir = join(root, 'data');
  const storage = await openControllerStorage(StoreConfig.parse({ kind: 'postgres', url }), dir, { health: new StorageHealth(), log: createLog('contract', 'silent'), env: {} });
  return {
    dir,
    logOpts: {},
    break: () => pg.stop(),
    heal: () => pg.start(),
    env: { OUTPOST_STORE_URL: url },
    async close() {
      await storage.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

storeContract({
  name: 'postgres',
  shared: true,
  breaksStores: true,
  place: async () => mounted(await pg.createDatabase()),
  peer: (p) => mounted(p.env.OUTPOST_STORE_URL),
});
