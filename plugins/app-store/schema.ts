import { isIP } from 'node:net';
import { z } from '../sdk/index.ts';

const ipAddress = z.string().refine((v) => isIP(v) !== 0, { message: 'must be an IPv4 or IPv6 address' });

const portRange = z
  .object({ from: z.number().int().min(1).max(65535), to: z.number().int().min(1).max(65535) })
  .strict()
  .refine((r) => r.from <= r.to, { message: '"from" must not be above "to"' });

/** Settings one node may override (a node with another Docker socket or its own port range). */
const nodeOverride = z
  .object({
    socketPath: z.string().min(1).optional(),
    ports: portRange.optional(),
    bindAddress: ipAddress.optional(),
  })
  .strict();

export const appStoreConfig = z
  .object({
    /** Serve the Websoft9 routes without the admin token (the original had no auth); only on a trusted network. */
    open: z.boolean().default(false),
    /** Folders of `<app>.json` manifests, relative to the working directory unless absolute; later folders win. */
    catalogDirs: z.array(z.string().min(1)).min(1).default(['configs/apps']),
    /** The local Docker Engine's socket on each node. */
    socketPath: z.string().min(1).default('/var/run/docker.sock'),
    /** Host ports handed to apps (Websoft9 used 9001–9099). */
    ports: portRange.default({ from: 9001, to: 9099 }),
    /** Host address published ports bind to. */
    bindAddress: ipAddress.default('0.0.0.0'),
    /** Per-node overrides, keyed by node name (the config is pushed to every agent). */
    nodes: z.record(z.string(), nodeOverride).default({}),
    /** Longest wait for an image pull. */
    pullTimeoutSec: z.number().int().min(5).max(3600).default(600),
    /** Longest wait for an app to turn healthy after its containers start. */
    healthTimeoutSec: z.number().int().min(1).max(3600).default(120),
    /** Seconds a container gets to stop before it is killed on uninstall. */
    stopTimeoutSec: z.number().int().min(0).max(300).default(10),
  })
  .strict();
export type AppStoreConfig = z.infer<typeof appStoreConfig>;

export type PortRange = { from: number; to: number };

/** The settings an agent runs with after its node override is applied. */
export interface NodeSettings {
  socketPath: string;
  ports: PortRange;
  bindAddress: string;
}

export function settingsFor(config: AppStoreConfig, nodeName: string): NodeSettings {
  const o = config.nodes[nodeName] ?? {};
  return { socketPath: o.socketPath ?? config.socketPath, ports: o.ports ?? config.ports, bindAddress: o.bindAddress ?? config.bindAddress };
}

/** Status codes of Websoft9's getAppInfo (0 not started, 1 running, 2 failed) plus Outpost's 3 installing. */
export type AppStatus = AppSnapshot['status'];
export const STATUS_CODE: Record<AppStatus, '0' | '1' | '2' | '3'> = { stopped: '0', removed: '0', running: '1', failed: '2', installing: '3' };

const portAssignment = z.object({
  /** "main" or the sidecar's name. */
  service: z.string(),
  container: z.number().int(),
  host: z.number().int(),
  role: z.string(),
  protocol: z.enum(['tcp', 'udp']),
});
export type PortAssignment = z.output<typeof portAssignment>;

/** What an agent tells the controller about one app: never a secret. */
export const appSnapshot = z.object({
  app: z.string(),
  node: z.string().optional(),
  installId: z.string(),
  status: z.enum(['installing', 'running', 'failed', 'removed', 'stopped']),
  /** 0–100 while installing. */
  progress: z.number(),
  step: z.string(),
  info: z.string(),
  containerName: z.string(),
  containers: z.array(z.string()),
  network: z.string(),
  volumes: z.array(z.string()),
  ports: z.array(portAssignment),
  image: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type AppSnapshot = z.output<typeof appSnapshot>;

export const APP_NAME = /^[a-z][a-z0-9-]{1,29}$/;
