import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PluginDefinition } from '../plugins/sdk/contract.ts';
import { describeIssues } from '../plugins/sdk/validate.ts';

/**
 * Imports `<name>/index.ts` from plugins/, then from each of `dirs` (a host's pluginDirs): the spec and
 * the two lazy halves, nothing else (a half is imported only by the host that runs it). The runner
 * checks the name first, so a config can never point outside those folders.
 */
export async function loadPluginDefinition(name: string, dirs: string[] = []): Promise<PluginDefinition> {
  // Same extension as this file for the built-in ones, so a tree precompiled to .js (no tsx loader thread) loads them too.
  const builtIn = new URL(`../plugins/${name}/index.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url);
  const candidates = [builtIn, ...dirs.flatMap((d) => ['js', 'ts'].map((ext) => pathToFileURL(join(resolve(d), name, `index.${ext}`))))];
  const file = candidates.find((u) => existsSync(u));
  if (!file) throw new Error(`unknown plugin "${name}"${dirs.length ? ` (looked in plugins/ and ${dirs.join(', ')})` : ''}`);
  let mod: { default?: PluginDefinition };
  try {
    mod = await import(file.href);
  } catch (err) {
    throw new Error(`plugin "${name}" failed to load: ${(err as Error).message}`);
  }
  if (!mod.default?.spec) throw new Error(`plugin "${name}" has no default export made with definePlugin`);
  return mod.default;
}

/** Validates a config against the plugin's schema; throws a message naming the plugin and each bad field. */
export function validatePluginConfig(def: PluginDefinition, config: unknown): unknown {
  const r = def.spec.config.safeParse(config ?? {});
  if (!r.success) throw new Error(`invalid config for plugin "${def.spec.name}": ${describeIssues(r.error)}`);
  return r.data;
}
