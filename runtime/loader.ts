import type { PluginDefinition } from '../plugins/sdk/contract.ts';
import { describeIssues } from '../plugins/sdk/validate.ts';

/**
 * Imports plugins/<name>/index.ts: the spec and the two lazy halves, nothing else (a half is imported
 * only by the host that runs it). The runner checks the name first, so a config cannot point outside
 * plugins/.
 */
export async function loadPluginDefinition(name: string): Promise<PluginDefinition> {
  let mod: { default?: PluginDefinition };
  try {
    // Same extension as this file, so a tree precompiled to .js (no tsx loader thread) loads its plugins too.
    mod = await import(new URL(`../plugins/${name}/index.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url).href);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(`${name}/index.`)) throw new Error(`unknown plugin "${name}"`);
    throw new Error(`plugin "${name}" failed to load: ${e.message}`);
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
