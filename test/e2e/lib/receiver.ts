/**
 * A webhook receiver for e2e tests: records every request (headers, raw body, arrival time) and answers
 * what `respond` decides, so a test can fail attempts on purpose and check what came back.
 *
 *   const rx = await startReceiver({ host: '127.0.0.1', respond: (req, attempt) => (attempt === 1 ? 500 : 200) });
 *   rx.url; rx.requests; await rx.waitFor('node.down', (r) => r.json.data.node.id === id); await rx.close();
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { until } from '../../helpers/cluster.ts';

export interface ReceivedRequest {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Parsed body, or undefined when it is not JSON. */
  json: any;
  /** 1 for the first request carrying this X-Outpost-Delivery id, 2 for its first retry, ... */
  attempt: number;
  /** The status this receiver answered. */
  status: number;
}

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** Waits for a request whose X-Outpost-Event is `event` and that matches `pred`; resolves with it. */
  waitFor(event: string, pred?: (r: ReceivedRequest) => boolean, timeoutMs?: number): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

export async function startReceiver(opts: { host?: string; respond?: (req: ReceivedRequest, attempt: number) => number } = {}): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const attempts = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['x-outpost-delivery'] ?? '');
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      let json: any;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const rec: ReceivedRequest = { at: Date.now(), path: req.url ?? '/', headers: req.headers, body, json, attempt, status: 200 };
      rec.status = opts.respond?.(rec, attempt) ?? 200;
      requests.push(rec);
      res.writeHead(rec.status, { 'content-type': 'text/plain' }).end(rec.status < 300 ? 'ok' : 'try again');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve));
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}/hook`,
    requests,
    waitFor: (event, pred = () => true, timeoutMs = 30_000) => until(`webhook ${event}`, () => requests.find((r) => r.headers['x-outpost-event'] === event && pred(r)), timeoutMs, 20),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
