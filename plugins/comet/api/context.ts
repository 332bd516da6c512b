import type { CometConfig } from '../config.ts';
import type { Balancer } from '../logic/balancer.ts';
import type { ClusterCounts } from '../logic/cluster-counts.ts';
import type { PushRequest } from '../peer-messages.ts';
import type { GoimResult } from './envelope.ts';

/** What goim's handlers read of a request: repeated query values and the raw body bytes. */
export interface GoimRequest {
  queryAll: Record<string, string[]>;
  raw: Buffer;
}

/** A live node running comet, as the controller's node registry knows it. */
export interface CometNode {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** The node's own address (default public address for nodes/weighted). */
  address: string;
  version?: string;
}

/** How pushes leave the controller: to the nodes its own tables route them to, and to every other controller for theirs. */
export interface Pusher {
  /** Live nodes with the comet plugin running, whichever controller holds their link. */
  nodes(): CometNode[];
  /** Routes the push here and on the other controllers; resolves with how many nodes it went to, once all have answered. */
  push(p: PushRequest): Promise<number>;
}

export interface GoimContext {
  config: CometConfig;
  counts: ClusterCounts;
  balancer: Balancer;
  pusher: Pusher;
}

export type GoimHandler = (req: GoimRequest, ctx: GoimContext) => GoimResult | Promise<GoimResult>;
