import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `--profile 1`: a command wrapper for TestController that runs it under V8's sampling profiler;
 * the .cpuprofile lands in the returned dir when the controller exits (open it in Chrome DevTools).
 */
export async function profiler(enabled: number, name: string): Promise<{ wrapper?: string[]; dir?: string }> {
  if (!enabled) return {};
  const dir = await mkdtemp(join(tmpdir(), `outpost-${name}-profile-`));
  return { dir, wrapper: ['/bin/sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${dir} "$@"`] };
}
