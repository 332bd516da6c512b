/**
 * A loopback HTTP server for dns-sync's provider tests: records every request exactly as it arrived
 * (method, path, raw query, headers, body) and answers with the test's handler, which plays the part
 * of the DNS API (PowerDNS, Alidns, Cloudflare) with the state the test gives it.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  /** Path without the query. */
  path: string;
  /** The raw query string as sent (no leading `?`). */
  rawQuery: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

export interface Answer {
  status: number;
  json?: unknown;
  text?: string;
}

export interface ApiServer {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

export async function startApiServer(handler: (req: SeenRequest) => Answer): Promise<ApiServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = req.url ?? '/';
      const q = raw.indexOf('?');
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const seen: SeenRequest = {
        method: req.method ?? '',
        path: q < 0 ? raw : raw.slice(0, q),
        rawQuery: q < 0 ? '' : raw.slice(q + 1),
        query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)),
        headers: req.headers,
        body,
        json,
      };
      requests.push(seen);
      let answer: Answer;
      try {
        answer = handler(seen);
      } catch (err) {
        answer = { status: 599, text: `test handler threw: ${(err as Error).message}` };
      }
      const payload = answer.json !== undefined ? JSON.stringify(answer.json) : (answer.text ?? '');
      res.writeHead(answer.status, { 'content-type': answer.json !== undefined ? 'application/json' : 'text/plain' });
      res.end(payload);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
