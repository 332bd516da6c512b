import type { CloseReason } from './transport.ts';

export type PushKind = 'keys' | 'mids' | 'room' | 'all';

/** Plain counters the agent exports as metrics (outpost_comet_*). */
export class GatewayStats {
  accepted = 0;
  /** Connections refused at accept because a limit was reached. */
  refused = 0;
  authRefused = 0;
  closed: Record<CloseReason, number> = {
    frame: 0, auth: 0, kicked: 0, 'handshake-timeout': 0, 'heartbeat-timeout': 0, slow: 0, flood: 0, full: 0, shutdown: 0, peer: 0,
  };
  pushes: Record<PushKind, number> = { keys: 0, mids: 0, room: 0, all: 0 };
  /** Messages (inner frames) written to connections. */
  delivered = 0;
  /** Messages and replies dropped because a connection was over its send-buffer limit. */
  dropped = 0;
}
