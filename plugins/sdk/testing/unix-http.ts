/**
 * An HTTP server on a unix socket in a temp dir: what a plugin that talks to a local daemon's API
 * (app-store and the Docker Engine) is pointed at in a test, through the socket path in its config.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface UnixHttpServer {
  socketPath: string;
  /** Every request seen, in order: method and path with query. */
  requests: Array<{ method: string; url: string }>;
  close(): Promise<void>;
}

export async function unixHttpServer(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>): Promise<UnixHttpServer> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-sock-'));
  const socketPath = join(dir, 'api.sock');
  const requests: UnixHttpServer['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/' });
      Promise.resolve(handler(req, res, Buffer.concat(chunks).toString('utf8'))).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: err.message }));
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return {
    socketPath,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
