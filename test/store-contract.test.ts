/**
 * The storage contract (test/helpers/store-contract.ts) on the embedded backend: lowdb stores and
 * file logs and queues in a temp dir. A full disk is a faulty file system that has no room left.
 * The same suite runs on PostgreSQL in test/e2e/store-postgres.e2e.ts.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { storeContract, type Place } from './helpers/store-contract.ts';
import { tempDir } from './helpers/cluster.ts';
import { FaultyFs } from './helpers/faulty-fs.ts';

storeContract({
  name: 'files',
  shared: false,
  breaksStores: false,
  async place(): Promise<Place> {
    const root = await tempDir('outpost-contract-');
    const fs = new FaultyFs();
    return {
      dir: join(root, 'data'),
      logOpts: { fs, fsync: 'none' },
      break: async () => void (fs.free = 0),
      heal: async () => void (fs.free = Infinity),
      env: {},
      close: () => rm(root, { recursive: true, force: true, maxRetries: 5 }),
    };
  },
});
