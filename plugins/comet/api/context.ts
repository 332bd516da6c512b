import type { CometConfig } from '../config.ts';
import type { Balancer } from '../logic/balancer.ts';
import type { RoutingTable } from '../logic/routing.ts';
import type { PushMsg } from '../messages.ts';
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

/** How pushes leave the controller: the SDK's best-effort channels, one message per node. */
export interface Pusher {
  /** Live nodes with the comet plugin running. */
  nodes(): CometNode[];
  sendToNode(nodeId: string, msg: PushMsg): void;
  /** The same message to several nodes (encoded once). */
  broadcast(nodeIds: string[], msg: PushMsg): void;
}

export interface GoimContext {
  config: CometConfig;
  routing: RoutingTable;
  balancer: Balancer;
  pusher: Pusher;
}

export type GoimHandler = (req: GoimRequest, ctx: GoimContext) => GoimResult;
