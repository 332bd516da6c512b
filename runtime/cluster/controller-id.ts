/**
 * The controller's id (`ctl_…`): who holds the singleton lease and which links are whose. Kept in a
 * file of its own in the data dir, next to the mounted stores rather than in them: two controllers
 * sharing one database must not share one id, and a controller restarted on the same dir must keep
 * its own (its lease and presence rows are then recognised as its own).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const FILE = 'controller-id';
const ID = /^ctl_[a-z0-9]{8,40}$/;

export async function controllerId(dataDir: string): Promise<string> {
  const path = join(dataDir, FILE);
  const found = await readFile(path, 'utf8').then(
    (t) => t.trim(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    },
  );
  if (found !== undefined) {
    if (!ID.test(found)) throw new Error(`${path} holds "${found.slice(0, 60)}", not a controller id (ctl_ and 8-40 letters or digits): fix or delete the file`);
    return found;
  }
  const id = `ctl_${randomBytes(8).toString('hex')}`;
  await mkdir(dataDir, { recursive: true });
  // Whole or not at all: a crash mid-write must not leave an id the next start refuses.
  await writeFile(`${path}.tmp`, `${id}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return id;
}
