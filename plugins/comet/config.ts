import { secret, z } from '../sdk/index.ts';
import type { GatewayOptions } from './gateway/gateway.ts';
import type { TokenCheck } from './gateway/jwt.ts';

const port = z.number().int().min(0).max(65535);

const jwt = z
  .object({
    /** Public keys (JWK) for RS/PS/ES/EdDSA tokens. */
    keys: z.array(z.record(z.string(), z.unknown())).optional(),
    /** A JWKS file (`{"keys": [...]}`) read when the gateway starts. */
    jwksFile: z.string().min(1).optional(),
    /** Shared secret for HS256/384/512 tokens. */
    secret: secret(z.string().min(16)).optional(),
    audience: z.union([z.string(), z.array(z.string())]).optional(),
    issuer: z.union([z.string(), z.array(z.string())]).optional(),
  })
  .strict()
  .refine((j) => j.keys?.length || j.jwksFile || j.secret, { message: 'auth.jwt needs keys, jwksFile or secret' });

/**
 * One config for both halves (the controller pushes it to agents). goim's defaults: TCP 3101,
 * WebSocket 3102, WSS 3103, handshake 5 s, heartbeat 240 s × 2, backoff {3, 1.8, 0.3, 300}.
 */
export const cometConfig = z
  .object({
    /** Where the gateway listens; loopback so that a first start exposes nothing. */
    host: z.string().min(1).default('127.0.0.1'),
    tcp: z.object({ enabled: z.boolean().default(true), port: port.default(3101) }).strict().prefault({}),
    ws: z.object({ enabled: z.boolean().default(true), port: port.default(3102) }).strict().prefault({}),
    /** WSS on its own port when a certificate and key (PEM files) are given. */
    wss: z.object({ port: port.default(3103), cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
    handshakeTimeoutMs: z.number().int().min(100).max(120_000).default(5000),
    /** goim's logic Node.Heartbeat and HeartbeatMax: a connection silent for their product is closed; nodes/weighted tells clients both. */
    heartbeat: z.object({ seconds: z.number().int().min(1).max(3600).default(240), max: z.number().int().min(1).max(10).default(2) }).strict().prefault({}),
    delivery: z
      .object({
        /** Bytes a connection may have waiting to be sent; past it messages to it are dropped and counted. */
        sendBufferBytes: z.number().int().min(4096).max(64 * 1024 * 1024).default(256 * 1024),
        /** A connection over its limit this long is closed. */
        slowCloseMs: z.number().int().min(100).max(600_000).default(10_000),
        /** How long a room batch may wait for more messages (goim: up to 1 s); 0 = only those of the same I/O turn. */
        roomBatchMs: z.number().int().min(0).max(50).default(5),
        roomBatchMessages: z.number().int().min(1).max(1000).default(32),
        roomBatchBytes: z.number().int().min(1024).max(1024 * 1024).default(64 * 1024),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxConnections: z.number().int().min(1).max(10_000_000).default(200_000),
        /** Connections not yet authenticated (a flood of idle sockets costs at most this many). */
        maxHandshaking: z.number().int().min(1).max(1_000_000).default(20_000),
      })
      .strict()
      .prefault({}),
    auth: z.object({ jwt: jwt.optional() }).strict().prefault({}),
    /** goim's HTTP API has no auth; Outpost requires the admin token on every goim route unless this is set (trusted networks only). */
    open: z.boolean().default(false),
    nodes: z
      .object({
        /** NodesReply.domain, and the only entry of `nodes` when no comet node is up. */
        domain: z.string().default(''),
        /** With it, platform=web gets `<node name><hostDomain>` per node (goim's host domains) instead of addresses. */
        hostDomain: z.string().optional(),
        /** This node's public address for nodes/weighted (default: the node's own address). */
        publicAddress: z.string().min(1).optional(),
        /** goim's fixed weight of this node in the balancer. */
        weight: z.number().int().min(1).max(1 << 20).default(10),
      })
      .strict()
      .prefault({}),
    backoff: z
      .object({ maxDelay: z.number().int().min(0).default(300), baseDelay: z.number().int().min(0).default(3), factor: z.number().min(1).default(1.8), jitter: z.number().min(0).max(1).default(0.3) })
      .strict()
      .prefault({}),
    /** Connect/disconnect/room deltas leave at this interval (connects sooner: op 8 waits for them). */
    feedIntervalMs: z.number().int().min(10).max(10_000).default(250),
    /** Full snapshot to heal the controller's tables after a lost delta. */
    resyncMs: z.number().int().min(1000).max(3_600_000).default(30_000),
    /** How often the controller sends agents the cluster-wide room counts (heartbeat replies). */
    onlineRefreshMs: z.number().int().min(100).max(60_000).default(1000),
  })
  .strict();

export type CometConfig = z.infer<typeof cometConfig>;

export function gatewayOptions(cfg: CometConfig, tokenCheck?: TokenCheck): GatewayOptions {
  return {
    handshakeTimeoutMs: cfg.handshakeTimeoutMs,
    heartbeatTimeoutMs: cfg.heartbeat.seconds * cfg.heartbeat.max * 1000,
    sendBufferBytes: cfg.delivery.sendBufferBytes,
    slowCloseMs: cfg.delivery.slowCloseMs,
    roomBatch: { windowMs: cfg.delivery.roomBatchMs, maxMessages: cfg.delivery.roomBatchMessages, maxBytes: cfg.delivery.roomBatchBytes },
    maxConnections: cfg.limits.maxConnections,
    maxHandshaking: cfg.limits.maxHandshaking,
    feedIntervalMs: cfg.feedIntervalMs,
    tokenCheck,
  };
}
