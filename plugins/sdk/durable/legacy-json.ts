import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { parseStoredJson } from '../json.ts';

/**
 * Carries a store that an older release kept as a JSON file into its replacement, once: `take`
 * gets the parsed file (and may decline it), then the file is renamed to `<file>.migrated`, so a
 * later start neither imports it again nor loses it for inspection.
 */
export async function importLegacyJson<T>(dir: string, file: string, take: (old: T, extraLines: string[]) => Promise<void>, extraFile?: string): Promise<void> {
  const path = join(dir, file);
  const text = await readIfThere(path);
  if (text === null) return;
  let old: T;
  try {
    old = parseStoredJson(text) as T;
  } catch (err) {
    throw new Error(`${path} (from an older release) is not valid JSON: ${(err as Error).message}; move it away to start without it`);
  }
  const extraPath = extraFile ? join(dir, extraFile) : undefined;
  const extra = extraPath ? await readFile(extraPath, 'utf8').catch(() => '') : '';
  await take(old, extra.split('\n').filter((l) => l.trim() !== ''));
  await rename(path, `${path}.migrated`);
  if (extraPath && extra) await rename(extraPath, `${extraPath}.migrated`);
}

/**
 * The same for a JSON-lines file: `take` gets the records that parse (a line cut short by a crash is
 * left out), then the file is set aside as `<file>.migrated`.
 */
export async function importLegacyLines(dir: string, file: string, take: (records: unknown[]) => Promise<void>): Promise<void> {
  const path = join(dir, file);
  const text = await readIfThere(path);
  if (text === null) return;
  const records: unknown[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      records.push(parseStoredJson(line));
    } catch {
      // torn by a crash: the release that wrote it skipped such lines too
    }
  }
  await take(records);
  await rename(path, `${path}.migrated`);
}

async function readIfThere(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
