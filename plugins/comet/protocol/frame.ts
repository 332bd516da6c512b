/**
 * goim's frame (api/protocol/protocol.go): a 16-byte big-endian header — packLen int32, headerLen
 * int16 (always 16), ver int16, op int32, seq int32 — then packLen-16 bytes of body.
 */
export const HEADER_LEN = 16;
/** MaxBodySize: the limit on frames a client sends; server frames have none. */
export const MAX_BODY = 4096;
export const MAX_PACK = MAX_BODY + HEADER_LEN;

export interface Frame {
  ver: number;
  op: number;
  seq: number;
  /** A view into the bytes read: copy what must outlive the read callback. */
  body: Buffer;
}

export type FrameError = 'packLen' | 'headerLen';

const EMPTY = Buffer.alloc(0);

export function writeHeader(buf: Buffer, offset: number, packLen: number, ver: number, op: number, seq: number): void {
  buf.writeInt32BE(packLen, offset);
  buf.writeInt16BE(HEADER_LEN, offset + 4);
  buf.writeInt16BE(ver, offset + 6);
  buf.writeInt32BE(op, offset + 8);
  buf.writeInt32BE(seq, offset + 12);
}

export function encodeFrame(ver: number, op: number, seq: number, body: Uint8Array = EMPTY): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN + body.length);
  writeHeader(buf, 0, HEADER_LEN + body.length, ver, op, seq);
  buf.set(body, HEADER_LEN);
  return buf;
}

/** The heartbeat reply: packLen 20, body = the room's online count as int32 BE (WriteTCPHeart). */
export function encodeHeartbeatReply(ver: number, seq: number, online: number, op: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN + 4);
  writeHeader(buf, 0, HEADER_LEN + 4, ver, op, seq);
  buf.writeInt32BE(online | 0, HEADER_LEN);
  return buf;
}

/**
 * One WebSocket message = one frame (ReadWebsocket): shorter than a header, packLen outside
 * 0..4112 or headerLen ≠ 16 are errors that close the connection. A packLen longer than the message
 * would make goim panic; here it is a packLen error too. Bytes after packLen are ignored, as goim does.
 */
export function decodeMessage(msg: Buffer): Frame | FrameError {
  if (msg.length < HEADER_LEN) return 'packLen';
  const packLen = msg.readInt32BE(0);
  if (packLen < 0 || packLen > MAX_PACK || packLen > msg.length) return 'packLen';
  if (msg.readInt16BE(4) !== HEADER_LEN) return 'headerLen';
  return {
    ver: msg.readInt16BE(6),
    op: msg.readInt32BE(8),
    seq: msg.readInt32BE(12),
    body: packLen > HEADER_LEN ? msg.subarray(HEADER_LEN, packLen) : EMPTY,
  };
}
