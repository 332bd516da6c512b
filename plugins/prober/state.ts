import type { Group, Timing } from './schema.ts';

/** A probe node registered with /add_node. */
export interface NodeReg {
  ip: string;
  /** scrypt(passwd, salt), hex; the password itself is never stored. */
  hash: string;
  salt: string;
  addedAt: number;
  lastDeal: number | null;
}

export interface NodeView {
  status: number;
  resTime: number;
  at: number;
  timing?: Timing;
  certExpires?: string;
  error?: string;
}

export interface RecordState {
  state: 'up' | 'down' | 'unknown';
  status: number;
  resTime: number;
  degraded: boolean;
  lastRound: number | null;
  lastChange: number | null;
  /** Last result of each probe node (node id → view). */
  views: Record<string, NodeView>;
}

export interface MonitorsData {
  groups: Record<string, Group>;
  records: Record<string, Record<string, RecordState>>;
  probeNodes: Record<string, NodeReg>;
  /** Agents seen running the prober, so they count as probe nodes right after a controller restart. */
  knownAgents: Record<string, number>;
}

export interface Vote {
  s: number;
  t: number;
  at: number;
  timing?: Timing;
  cert?: string;
  err?: string;
}

export interface OpenRound {
  g: string;
  round: number;
  expected: string[];
  /** When this controller opened it: a round opened late (results replayed after a restart) still waits graceMs for the other nodes. */
  openedAt: number;
  /** record id → node id → vote */
  votes: Record<string, Record<string, Vote>>;
}

export interface RoundsData {
  open: Record<string, OpenRound>;
}

export interface HistoryEntry {
  g: string;
  round: number;
  decidedAt: number;
  degraded: boolean;
  nodes: string[];
  missing: string[];
  records: Array<{ record_id: string; state: string; status: number; res_time: number; failures: number; received: number }>;
}

export const roundKey = (g: string, round: number) => `${g}@${round}`;
