import { HEADER_LEN, writeHeader } from './frame.ts';
import { OP } from './ops.ts';

export interface PushMessage {
  op: number;
  body: Uint8Array;
}

/**
 * The bytes of one push, built once and shared by every connection it goes to. goim's job wraps
 * the message frames `{ver 1, op, seq 0, body}` in an op-9 (OpRaw) frame: a WebSocket client gets
 * that frame as one binary message, a TCP client only the inner frames (WriteTCP writes an OpRaw
 * body bare). `tcp` is a view into `ws`, so nothing is copied per transport either.
 */
export interface PushBytes {
  ws: Buffer;
  tcp: Buffer;
  /** Inner frames carried: what a client counts as messages. */
  count: number;
}

export function pushBytes(messages: readonly PushMessage[]): PushBytes {
  let size = HEADER_LEN;
  for (const m of messages) size += HEADER_LEN + m.body.length;
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, 0, size, 1, OP.raw, 0);
  let off = HEADER_LEN;
  for (const m of messages) {
    writeHeader(buf, off, HEADER_LEN + m.body.length, 1, m.op, 0);
    buf.set(m.body, off + HEADER_LEN);
    off += HEADER_LEN + m.body.length;
  }
  return { ws: buf, tcp: buf.subarray(HEADER_LEN), count: messages.length };
}
