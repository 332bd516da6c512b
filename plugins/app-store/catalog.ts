import { readdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseManifest, type Manifest } from './manifest.ts';

export interface Catalog {
  apps: Map<string, Manifest>;
  /** Manifests that failed validation, with the reason; shown on the panel, refused at install. */
  errors: Map<string, string>;
}

/** Reads every `<app>.json` of the folders; a later folder overrides an app of an earlier one. */
export async function loadCatalog(dirs: string[], cwd = process.cwd()): Promise<Catalog> {
  const apps = new Map<string, Manifest>();
  const errors = new Map<string, string>();
  for (const d of dirs) {
    const dir = resolve(cwd, d);
    let files: string[];
    try {
      files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    } catch (err) {
      throw new Error(`catalog folder ${dir} cannot be read: ${(err as Error).message}`);
    }
    for (const f of files) {
      const name = basename(f, '.json');
      try {
        let raw: unknown;
        try {
          raw = JSON.parse(await readFile(join(dir, f), 'utf8'));
        } catch (err) {
          throw new Error(`invalid manifest ${f}: ${(err as Error).message}`);
        }
        const m = parseManifest(raw, `manifest ${f}`);
        if (m.name !== name) throw new Error(`invalid manifest ${f}: name "${m.name}" does not match the file name`);
        apps.set(name, m);
        errors.delete(name);
      } catch (err) {
        apps.delete(name);
        errors.set(name, (err as Error).message);
      }
    }
  }
  return { apps, errors };
}
