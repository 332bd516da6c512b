import { appendFile, chmod, mkdir, open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Every file under a data dir is readable by its owner only: stores hold credentials, keys and
 * secrets, and the others (events, histories, journals) name nodes, URLs and payloads. A file's mode
 * is set when it is created, so temporary files get it too (a temp file renamed into place must not
 * leave the secret world-readable, even briefly).
 */
export const PRIVATE_FILE = 0o600;
export const PRIVATE_DIR = 0o700;

export async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
}

/** Appends to file, creating it owner-only. */
export function appendPrivate(file: string, data: string): Promise<void> {
  return appendFile(file, data, { mode: PRIVATE_FILE });
}

/**
 * Replaces file whole: written to a temp file beside it (owner-only from its creation, also when a
 * crash left an older one behind), then renamed over it, so a reader never sees half a file.
 */
export async function replacePrivate(file: string, data: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.tmp`);
  const fh = await open(tmp, 'w', PRIVATE_FILE);
  try {
    await fh.chmod(PRIVATE_FILE);
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** Narrows an existing file written by an older version that did not set modes; absent files are fine. */
export async function narrowMode(file: string): Promise<void> {
  await chmod(file, PRIVATE_FILE).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
