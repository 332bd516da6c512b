/**
 * The key controllers sign their calls to each other with (runtime/cluster/peer-sign.ts): made once,
 * by the first controller to need it, and kept in the shared store like the admin token's hash, so
 * every controller on the database reads the same one. Controllers starting together take turns
 * (an exclusive section): the first creates it, the others find it.
 */
import { randomBytes } from 'node:crypto';
import { openStore } from '../../plugins/sdk/store.ts';
import { exclusive } from '../../plugins/sdk/durable/backend.ts';

interface ClusterSecretData {
  peerSecret: string | null;
}

export async function clusterSecret(dataDir: string): Promise<Buffer> {
  return exclusive(dataDir, 'cluster-secret', async () => {
    const store = await openStore<ClusterSecretData>(dataDir, 'cluster', { peerSecret: null });
    try {
      if (!store.data.peerSecret) {
        const made = randomBytes(32).toString('base64url');
        await store.update((d) => {
          d.peerSecret ??= made;
        });
      }
      return Buffer.from(store.data.peerSecret!, 'base64url');
    } finally {
      await store.close();
    }
  });
}
