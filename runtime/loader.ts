import { join } from 'node:path';
import { openStore } from '../plugins/sdk/store.ts';
import { createScheduler, type Scheduler } from '../plugins/sdk/scheduler.ts';
import type { Log } from '../plugins/sdk/log.ts';
import type { PluginDefinition } from '../plugins/sdk/plugin.ts';
import { describeIssues } from '../plugins/sdk/validate.ts';

const PLUGIN_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/** Imports plugins/<name>/index.ts; the name is checked so a config can never point outside plugins/. */
export async function loadPluginDefinition(name: string): Promise<PluginDefinition> {
  if (!PLUGIN_NAME.test(name) || name === 'sdk') throw new Error(`invalid plugin name "${name}"`);
  let mod: { default?: PluginDefinition };
  try {
    // Same extension as this file, so a tree precompiled to .js (no tsx loader thread) loads its plugins too.
    mod = await import(new URL(`../plugins/${name}/index.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url).href);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(`${name}/index.`)) throw new Error(`unknown plugin "${name}"`);
    throw new Error(`plugin "${name}" failed to load: ${e.message}`);
  }
  if (!mod.default || mod.default.name !== name) throw new Error(`plugin "${name}" has no matching default export`);
  return mod.default;
}

export function validatePluginConfig(def: PluginDefinition, config: unknown): unknown {
  const r = def.config.safeParse(config ?? {});
  if (!r.success) throw new Error(`invalid config for plugin "${def.name}": ${describeIssues(r.error)}`);
  return r.data;
}

/** What both hosts hand every plugin: a store of its own, a scheduler, a child logger. */
export async function commonContext(dataDir: string, name: string, log: Log): Promise<{
  log: Log;
  store: Awaited<ReturnType<typeof openStore<Record<string, unknown>>>>;
  openStore<T extends object>(store: string, defaults: T): ReturnType<typeof openStore<T>>;
  schedule: Scheduler;
  dataDir: string;
}> {
  const dir = join(dataDir, 'plugins');
  const plog = log.child({ plugin: name });
  return {
    log: plog,
    store: await openStore<Record<string, unknown>>(dir, name, {}),
    openStore: <T extends object>(store: string, defaults: T) => openStore<T>(dir, `${name}.${store}`, defaults),
    schedule: createScheduler((err) => plog.error({ err: (err as Error)?.message }, 'scheduled task failed')),
    dataDir: dir,
  };
}
