/**
 * What the controller half keeps across restarts (`dns-sync.json`): what agents declared, when the
 * watchdog and the prober last changed their minds (for `upAfter`), each line's last switch and open
 * alert, and what dry-run providers would have written. Maps are keyed by names that come from
 * outside (node names, prober ips), so they are prototype-free (idMap).
 */
import { idMap } from '../sdk/index.ts';
import type { NodeDeclaration } from './config.ts';
import type { Liveness } from './nodes.ts';
import type { DryRunRecord } from './providers/dry-run.ts';
import type { SwitchedEvent } from './writer.ts';

export interface LastSwitch extends SwitchedEvent {
  at: number;
}

export interface Persisted {
  /** When dns-sync first ran on this controller, and when its config last changed (CocoaSyncer's createdAt, updatedAt). */
  createdAt: number;
  updatedAt: number;
  /** By node id: what the node's agent declares about itself. */
  declared: Record<string, NodeDeclaration>;
  /** By node name: the watchdog's last transition seen (the registry forgets it at a controller restart). */
  since: Record<string, { state: 'up' | 'down'; at: number }>;
  /** By probeKey: the prober quorum's last verdict on a record. */
  probes: Record<string, Liveness>;
  /** By decision key. */
  lastSwitch: Record<string, LastSwitch>;
  /** By decision key: since when no live node can serve the line (the alert is raised once). */
  alerts: Record<string, number>;
  /** By provider name. */
  dryRun: Record<string, DryRunRecord[]>;
}

export function emptyState(now: number): Persisted {
  return { createdAt: now, updatedAt: now, declared: idMap(), since: idMap(), probes: idMap(), lastSwitch: idMap(), alerts: idMap(), dryRun: idMap() };
}

/** A prober record as dns-sync looks it up: the monitor group and the node's address. */
export const probeKey = (app: string, group: string, ip: string) => JSON.stringify([app, group, ip]);
