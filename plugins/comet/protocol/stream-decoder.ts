import { HEADER_LEN, MAX_PACK, type Frame, type FrameError } from './frame.ts';

const EMPTY = Buffer.alloc(0);

/**
 * TCP is a byte stream: frames arrive split across reads or several to a read. Complete frames are
 * handed out as views into the chunk; only an incomplete tail is copied (at most one frame, ≤ 4112
 * bytes), so a connection holds no buffer between frames. Mirrors goim's ReadTCP: packLen > 4112 or
 * headerLen ≠ 16 is an error; a packLen ≤ 16 (even negative) is a frame without body.
 */
export class FrameStream {
  /** The incomplete frame being gathered: its 16 header bytes first, then the whole frame. */
  private partial: Buffer | undefined;
  private filled = 0;

  /**
   * Feeds one read. `onFrame` returns false to stop (the connection closed under it). A frame's body
   * is only valid during its onFrame call.
   */
  push(chunk: Buffer, onFrame: (f: Frame) => boolean): FrameError | undefined {
    let off = 0;
    if (this.partial) {
      const used = this.fill(chunk);
      if (typeof used === 'string') return used;
      off = used;
      if (this.filled < this.partial.length) return undefined;
      const whole = this.partial;
      this.partial = undefined;
      this.filled = 0;
      if (!onFrame(readFrame(whole, 0, whole.length))) return undefined;
    }
    while (chunk.length - off >= HEADER_LEN) {
      const size = frameSize(chunk, off);
      if (typeof size === 'string') return size;
      if (chunk.length - off < size) break;
      if (!onFrame(readFrame(chunk, off, size))) return undefined;
      off += size;
    }
    if (off < chunk.length) {
      const rest = chunk.length - off;
      // Until its header is complete only 16 bytes are kept; a complete header was checked above.
      this.partial = Buffer.allocUnsafe(rest < HEADER_LEN ? HEADER_LEN : (frameSize(chunk, off) as number));
      chunk.copy(this.partial, 0, off);
      this.filled = rest;
    }
    return undefined;
  }

  /** Copies from the chunk into the partial frame; returns the bytes used, or why its header is refused. */
  private fill(chunk: Buffer): number | FrameError {
    let p = this.partial!;
    let off = 0;
    if (this.filled < HEADER_LEN) {
      off = Math.min(HEADER_LEN - this.filled, chunk.length);
      chunk.copy(p, this.filled, 0, off);
      this.filled += off;
      if (this.filled < HEADER_LEN) return off;
      const size = frameSize(p, 0);
      if (typeof size === 'string') return size;
      if (size > HEADER_LEN) {
        const whole = Buffer.allocUnsafe(size);
        p.copy(whole, 0, 0, HEADER_LEN);
        this.partial = p = whole;
      }
    }
    const n = Math.min(p.length - this.filled, chunk.length - off);
    chunk.copy(p, this.filled, off, off + n);
    this.filled += n;
    return off + n;
  }
}

function readFrame(buf: Buffer, at: number, size: number): Frame {
  return {
    ver: buf.readInt16BE(at + 6),
    op: buf.readInt32BE(at + 8),
    seq: buf.readInt32BE(at + 12),
    body: size > HEADER_LEN ? buf.subarray(at + HEADER_LEN, at + size) : EMPTY,
  };
}

/** Bytes the frame at `off` occupies, or why it is refused. */
function frameSize(buf: Buffer, off: number): number | FrameError {
  const packLen = buf.readInt32BE(off);
  if (packLen > MAX_PACK) return 'packLen';
  if (buf.readInt16BE(off + 4) !== HEADER_LEN) return 'headerLen';
  return packLen > HEADER_LEN ? packLen : HEADER_LEN;
}
