import { access } from 'node:fs/promises';
import Docker from 'dockerode';

/** The Engine's socket: DOCKER_HOST when it names a unix socket, else Docker's default. */
function dockerSocket(): string {
  const host = process.env.DOCKER_HOST;
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
}

/**
 * Container counts from the local Docker Engine for /searchServer. A listing is one API round trip,
 * so it runs on the slow (disk) schedule rather than with every sample; null when there is no Engine.
 */
export class ContainerCounter {
  private counts: { total: number; running: number } | null = null;
  private readonly docker: Docker;

  constructor(private readonly socketPath = dockerSocket()) {
    this.docker = new Docker({ socketPath, timeout: 3000 });
  }

  latest(): { total: number; running: number } | null {
    return this.counts;
  }

  async refresh(): Promise<void> {
    try {
      // No socket file: no Engine on this host; skip the connection attempt.
      await access(this.socketPath);
      const list = await this.docker.listContainers({ all: true });
      this.counts = { total: list.length, running: list.filter((c) => c.State === 'running').length };
    } catch {
      this.counts = null;
    }
  }
}
