import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A command wrapper for run()/TestController that starts node with extra flags (before tsx's own). */
export function nodeFlagsWrapper(flags: string[]): string[] | undefined {
  return flags.length ? ['/bin/sh', '-c', `exec "$0" ${flags.join(' ')} "$@"`] : undefined;
}

/**
 * `--profile 1`: node flags that run a server under V8's sampling profiler; the .cpuprofile lands in
 * the returned dir when the process exits (open it in Chrome DevTools).
 */
export async function profiler(enabled: number, name: string): Promise<{ flags: string[]; wrapper?: string[]; dir?: string }> {
  if (!enabled) return { flags: [] };
  const dir = await mkdtemp(join(tmpdir(), `outpost-${name}-profile-`));
  const flags = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  return { dir, flags, wrapper: nodeFlagsWrapper(flags) };
}
