/**
 * The two parts of a plugin context that talk to the outside world beyond the host's own servers:
 * best-effort link channels and listeners on the plugin's own ports. The runner builds contexts
 * from these interfaces only, so their implementations (runtime/channels*.ts, runtime/listen.ts)
 * can change without touching it. The runner validates messages against the plugin's spec and
 * disposes of what these return (off functions, listeners) when the plugin stops.
 */
import type { Socket } from 'node:net';
import type { Server as HyperExpressServer } from 'hyper-express';
import type { HttpListenOptions, Listener, PeerAnswer, TcpListenOptions } from '../plugins/sdk/contract.ts';

/** A message as it arrives: already decoded, not yet validated (the runner checks it against the spec). */
export type MessageHandler = (nodeId: string, type: string, msg: unknown) => void;

/**
 * Best-effort plugin messages over the agent link: no disk, dropped (and counted by the
 * implementation) when the link is down or over its high-water mark.
 * On the agent, `nodeId` is ignored when sending (there is one peer: the controller) and is the
 * controller's empty id '' on receipt.
 */
export interface ChannelPort {
  /** false when dropped. */
  send(plugin: string, nodeId: string, type: string, msg: unknown): boolean;
  /** Controller only: encoded once, sent to each listed (or every connected) node; how many links took it. */
  broadcast(plugin: string, nodeIds: string[] | 'all', type: string, msg: unknown): number;
  /** Routes the plugin's incoming messages to handler until the returned function is called. */
  onMessage(plugin: string, handler: MessageHandler): () => void;
}

/** Listeners on a plugin's own ports (agent plugins: comet's WebSocket and TCP servers). */
export interface ListenPort {
  /** Rejects with a message naming host and port when the bind fails. */
  tcp(plugin: string, opts: TcpListenOptions, onConnection: (socket: Socket) => void): Promise<Listener>;
  /** hyper-express, imported only when called: an agent whose plugins never call it maps no uWS. */
  http(plugin: string, opts: HttpListenOptions, setup: (app: HyperExpressServer) => void): Promise<Listener>;
}

/**
 * Calls between the same plugin on controllers sharing one database (runtime/cluster/peer-*.ts on the
 * controller; none in the SDK's harness). The runner binds `plugin` and disposes of nothing here:
 * calls in flight when a plugin stops settle on their own deadline.
 */
export interface PeerPort {
  /** This controller's id. */
  self(): string;
  /** Other live controllers. */
  list(): Array<{ id: string }>;
  call(controller: string, plugin: string, method: string, body: unknown, timeoutMs: number): Promise<unknown>;
  broadcast(plugin: string, method: string, body: unknown, timeoutMs: number): Promise<PeerAnswer[]>;
}

/** A controller alone (files, tests): no peers; a call names the controller it cannot reach. */
export const NO_PEERS: PeerPort = {
  self: () => 'local',
  list: () => [],
  call: async (controller) => {
    throw new Error(`controller ${controller} is not a live peer of this one`);
  },
  broadcast: async () => [],
};
