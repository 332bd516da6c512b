import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Capabilities, Capability } from '../plugins/sdk/capabilities.ts';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Where the `ping` package will spawn ping from: a fixed path on macOS, PATH elsewhere. */
function findPing(env: NodeJS.ProcessEnv): string | undefined {
  if (process.platform === 'darwin') return executable('/sbin/ping') ? '/sbin/ping' : undefined;
  const names = process.platform === 'win32' ? ['ping.exe'] : ['ping'];
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const n of names) if (executable(join(dir, n))) return join(dir, n);
  }
  return undefined;
}

function icmp(env: NodeJS.ProcessEnv): Capability {
  if (findPing(env)) return { available: true };
  return { available: false, reason: 'ping is not installed: no "ping" executable on PATH (Debian/Ubuntu: apt-get install iputils-ping)' };
}

/** app-store's default Engine socket (its `socketPath`). */
const DOCKER_SOCKET = '/var/run/docker.sock';

function docker(socket = DOCKER_SOCKET): Capability {
  try {
    if (statSync(socket).isSocket()) return { available: true };
  } catch {
    // absent: said below
  }
  return { available: false, reason: `no Docker Engine socket at ${socket} (install and start Docker, e.g. apt-get install docker.io)` };
}

/** Checked once at agent start; cheap (a few stat calls), no process spawned. */
export function detectCapabilities(env: NodeJS.ProcessEnv = process.env): Capabilities {
  return { icmp: icmp(env), docker: docker() };
}
