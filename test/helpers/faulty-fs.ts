/**
 * A LogFs over the real file system that behaves like a volume with `free` bytes left: a write that
 * does not fit is cut short (what a file-size limit or a full disk does) and the next one fails with
 * `code`; truncating, replacing and removing files gives the space back. Single operations can be made
 * to fail too, to cut a compaction short at a chosen step.
 */
import { stat } from 'node:fs/promises';
import { nodeLogFs, type LogFile, type LogFs } from '../../plugins/sdk/durable/files.ts';

type Op = 'open' | 'rename' | 'datasync' | 'syncDir';

export class FaultyFs implements LogFs {
  /** Bytes that may still be written, across all files. */
  free = Infinity;
  code = 'ENOSPC';
  datasyncs = 0;
  writes = 0;
  /** Makes the next matching operation fail once with `code`. */
  readonly failOnce = new Map<Op, (path: string) => boolean>();
  /** Holds the next open of a matching path until the returned promise settles (to act while a write waits). */
  holdOpen: ((path: string) => Promise<void> | undefined) | undefined;
  private readonly sizes = new Map<string, number>();

  private fault(op: Op, path: string): void {
    const match = this.failOnce.get(op);
    if (match?.(path)) {
      this.failOnce.delete(op);
      throw this.error(op);
    }
  }

  private error(op: string): NodeJS.ErrnoException {
    return Object.assign(new Error(`${this.code}: injected failure, ${op}`), { code: this.code });
  }

  private size(path: string): number {
    return this.sizes.get(path) ?? 0;
  }

  async open(path: string, flags: 'a' | 'w' | 'r'): Promise<LogFile> {
    this.fault('open', path);
    await this.holdOpen?.(path);
    if (flags === 'w') this.free += this.size(path);
    const real = await nodeLogFs.open(path, flags);
    this.sizes.set(path, flags === 'w' ? 0 : await stat(path).then((s) => s.size, () => 0));
    const fs = this;
    return {
      async write(buf, offset, length) {
        if (fs.free <= 0) throw fs.error('write');
        const n = Math.min(length, fs.free);
        const r = await real.write(buf, offset, n);
        fs.free -= r.bytesWritten;
        fs.writes += 1;
        fs.sizes.set(path, fs.size(path) + r.bytesWritten);
        return r;
      },
      async datasync() {
        fs.fault('datasync', path);
        fs.datasyncs += 1;
        await real.datasync();
      },
      async truncate(len) {
        await real.truncate(len);
        fs.free += Math.max(0, fs.size(path) - len);
        fs.sizes.set(path, len);
      },
      close: () => real.close(),
    };
  }

  read(path: string): Promise<Buffer | null> {
    return nodeLogFs.read(path);
  }

  async rename(from: string, to: string): Promise<void> {
    this.fault('rename', to);
    await nodeLogFs.rename(from, to);
    this.free += this.size(to);
    this.sizes.set(to, this.size(from));
    this.sizes.delete(from);
  }

  async remove(path: string): Promise<void> {
    await nodeLogFs.remove(path);
    this.free += this.size(path);
    this.sizes.delete(path);
  }

  mkdirs(dir: string): Promise<void> {
    return nodeLogFs.mkdirs(dir);
  }

  async syncDir(dir: string): Promise<void> {
    this.fault('syncDir', dir);
    await nodeLogFs.syncDir(dir);
  }
}
