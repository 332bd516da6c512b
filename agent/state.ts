import { randomBytes } from 'node:crypto';
import { openStore, type Store } from '../plugins/sdk/store.ts';

export interface AgentState {
  controller: string | null;
  nodeId: string | null;
  name: string | null;
  credential: string | null;
  /** Bearer token for this agent's own local API routes that need admin rights. */
  apiToken: string | null;
  /** Plugin configs pushed by the controller; they win over the local config file. */
  pushed: Record<string, unknown>;
}

/** The agent's state dir: credential and pushed config, in a 0600 file. */
export async function openAgentState(dataDir: string): Promise<Store<AgentState>> {
  const store = await openStore<AgentState>(dataDir, 'state', { controller: null, nodeId: null, name: null, credential: null, apiToken: null, pushed: {} });
  if (!store.data.apiToken) {
    await store.update((d) => {
      d.apiToken = randomBytes(24).toString('base64url');
    });
  }
  return store;
}
