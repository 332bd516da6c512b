import { access } from 'node:fs/promises';
import { request } from 'node:http';

/** The Engine's socket: DOCKER_HOST when it names a unix socket, else Docker's default. */
function dockerSocket(): string {
  const host = process.env.DOCKER_HOST;
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
}

const TIMEOUT_MS = 3000;
/** A listing of even thousands of containers is a few MB; anything larger is not an Engine answering. */
const MAX_BODY = 64 * 1024 * 1024;

/**
 * GET /containers/json?all=1 on the Engine's unix socket. One request is all the counts need; dockerode
 * (kept by app-store, which manages containers) would add ~12 MB to every agent for it.
 */
function listContainers(socketPath: string): Promise<Array<{ State?: string }>> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/containers/json?all=1', method: 'GET', headers: { host: 'docker' }, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error('Docker Engine answer too large'));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`Docker Engine answered ${res.statusCode}`));
        try {
          const list: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (!Array.isArray(list)) throw new Error('Docker Engine listing is not an array');
          resolve(list as Array<{ State?: string }>);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`Docker Engine did not answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Container counts from the local Docker Engine for /searchServer. A listing is one API round trip,
 * so it runs on the slow (disk) schedule rather than with every sample; null when there is no Engine.
 */
export class ContainerCounter {
  private counts: { total: number; running: number } | null = null;

  constructor(private readonly socketPath = dockerSocket()) {}

  latest(): { total: number; running: number } | null {
    return this.counts;
  }

  async refresh(): Promise<void> {
    try {
      // No socket file: no Engine on this host; skip the connection attempt.
      await access(this.socketPath);
      const list = await listContainers(this.socketPath);
      this.counts = { total: list.length, running: list.filter((c) => c.State === 'running').length };
    } catch {
      this.counts = null;
    }
  }
}
