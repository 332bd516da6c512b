import type { PushBytes } from '../protocol/push-bytes.ts';

/** Why the gateway closes a connection; listeners map it to a WebSocket close code or a TCP reset. */
export type CloseReason =
  | 'frame' // a frame goim's reader refuses (packLen, headerLen)
  | 'auth' // op 7 body not usable, token refused, or registration failed
  | 'kicked' // the same key connected again
  | 'handshake-timeout'
  | 'heartbeat-timeout'
  | 'slow' // stayed over the send-buffer limit
  | 'flood' // too many frames while auth was in flight
  | 'full' // connection limit reached
  | 'shutdown'
  | 'peer'; // the client went away

/**
 * What the gateway needs from a connection, whatever carries it. `reply` and `push` return false
 * when the bytes were dropped because the connection is over its send-buffer limit.
 */
export interface Transport {
  readonly kind: 'ws' | 'tcp';
  readonly ip: string;
  reply(frame: Buffer): boolean;
  push(p: PushBytes): boolean;
  /** Bytes accepted but not yet handed to the kernel. */
  buffered(): number;
  close(reason: CloseReason): void;
}
