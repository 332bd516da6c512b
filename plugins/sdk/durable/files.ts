import { open, readFile, rename, unlink, chmod } from 'node:fs/promises';
import { PRIVATE_DIR, PRIVATE_FILE, privateDir } from '../files.ts';

/** The slice of a file handle a log uses. */
export interface LogFile {
  write(buf: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(len: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file operations a file log performs, injectable so tests can make any one of them fail the
 * way a full disk does (ENOSPC mid-write, at fsync, on rename) without needing one.
 */
export interface LogFs {
  open(path: string, flags: 'a' | 'w' | 'r'): Promise<LogFile>;
  /** The whole file, or null when it does not exist. */
  read(path: string): Promise<Buffer | null>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file if it exists. */
  remove(path: string): Promise<void>;
  mkdirs(dir: string): Promise<void>;
  /** Makes a rename or a new file in dir durable. */
  syncDir(dir: string): Promise<void>;
}

export const nodeLogFs: LogFs = {
  async open(path, flags) {
    const fh = await open(path, flags, PRIVATE_FILE);
    // An existing file keeps the mode it was created with; logs hold data only this user may read.
    if (flags !== 'r') await fh.chmod(PRIVATE_FILE);
    return fh;
  },
  async read(path) {
    try {
      return await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  },
  rename: (from, to) => rename(from, to),
  async remove(path) {
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  },
  async mkdirs(dir) {
    await privateDir(dir);
    await chmod(dir, PRIVATE_DIR).catch(() => undefined);
  },
  async syncDir(dir) {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

/** Writes all of buf (a write may be short, e.g. when it reaches a file-size limit). */
export async function writeAll(f: LogFile, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await f.write(buf, off, buf.length - off);
    // A short write that wrote nothing would loop forever; the next call reports why (EFBIG, ENOSPC).
    if (bytesWritten === 0) {
      await f.write(buf, off, buf.length - off);
      throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    }
    off += bytesWritten;
  }
}

/**
 * Splits file contents into complete lines and a torn tail (the bytes after the last newline: an
 * append cut short by a crash).
 */
export function splitLines(buf: Buffer): { lines: string[]; completeBytes: number; tornBytes: number } {
  const last = buf.lastIndexOf(0x0a);
  const completeBytes = last + 1;
  const text = buf.subarray(0, completeBytes).toString('utf8');
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  return { lines, completeBytes, tornBytes: buf.length - completeBytes };
}
