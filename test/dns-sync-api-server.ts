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

export const PDNS_KEY = 'pdns-test-api-key-0123';

export interface RRset {
  name: string;
  type: string;
  ttl: number;
  records: Array<{ content: string; disabled: boolean }>;
}

/**
 * The PowerDNS zone API for one zone: GET answers its rrsets, PATCH REPLACEs (422 on a bad content, like
 * pdns). `outage`, asked first on every request, may answer instead (a server that is failing).
 */
export async function pdnsApi(rrsets: RRset[], outage: (req: SeenRequest) => Answer | undefined = () => undefined) {
  return startApiServer((req: SeenRequest) => {
    const down = outage(req);
    if (down) return down;
    if (req.headers['x-api-key'] !== PDNS_KEY) return { status: 401, text: 'Unauthorized' };
    if (req.path !== '/api/v1/servers/localhost/zones/example.test.') return { status: 404, json: { error: 'Not Found' } };
    if (req.method === 'GET') return { status: 200, json: { name: 'example.test.', kind: 'Native', rrsets } };
    if (req.method !== 'PATCH') return { status: 405, json: { error: 'Method Not Allowed' } };
    if (req.headers['content-type'] !== 'application/json') return { status: 400, json: { error: 'content-type' } };
    const patch = req.json.rrsets as Array<RRset & { changetype: string }>;
    for (const s of patch) {
      if (s.changetype !== 'REPLACE') return { status: 422, json: { error: `changetype ${s.changetype}` } };
      const bad = s.records.find((r) => s.type === 'A' && !/^\d+\.\d+\.\d+\.\d+$/.test(r.content));
      if (bad) return { status: 422, json: { error: `Record ${s.name}/${s.type} '${bad.content}': Parsing record content (try 'pdnsutil check-zone'): unable to parse IP address` } };
    }
    for (const s of patch) {
      const i = rrsets.findIndex((x) => x.name === s.name && x.type === s.type);
      if (i >= 0) rrsets.splice(i, 1);
      rrsets.push({ name: s.name, type: s.type, ttl: s.ttl, records: s.records });
    }
    return { status: 204 };
  });
}

