/**
 * The signed task routes on a port of the plugin's own, served by node:http. The controller's server
 * (uWebSockets.js 20.30, DESIGN §1) drops every request that has an underscore in a header name without
 * answering, and Serendipity clients sign with an `app_key` header: those clients point their base URL
 * here and need no other change. (A client that can send `app-key` reaches the same routes on :7070.)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { normalizeIp } from '../sdk/client-ip.ts';
import { HttpError, isStorageFull, parseWireJson, storageFullMessage, type ControllerContext, type HttpRequest, type HttpResult, type Listener, type Method, type Route } from '../sdk/index.ts';
import { jobsError } from './envelope.ts';
import type { Spec } from './spec.ts';

const MAX_BODY = 1024 * 1024;

export function listenCompat(ctx: ControllerContext<Spec>, opts: { host: string; port: number }, routes: Route[]): Promise<Listener> {
  const signed = routes.filter((r) => r.auth === 'none');
  const server = createServer((req, res) => {
    serve(signed, req, res).catch((err: unknown) => {
      ctx.log.error({ err: (err as Error)?.message }, 'jobs listener: request failed');
      if (res.headersSent) res.destroy();
      else reply(res, jobsError(500, 'internal error'));
    });
  });
  return ctx.listen.tcp(opts, (socket) => server.emit('connection', socket));
}

async function serve(routes: Route[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://jobs');
  } catch {
    return reply(res, { ...jobsError(400, 'malformed request target'), status: 400 });
  }
  const route = routes.find((r) => r.path === url.pathname && (Array.isArray(r.method) ? r.method : [r.method]).includes(req.method as Method));
  if (!route) return reply(res, { ...jobsError(404, `no route for ${req.method} ${url.pathname.slice(0, 100)}`), status: 404 });
  const raw = await readBody(req);
  if (raw === null) return reply(res, route.error(413, `body too large: limit ${MAX_BODY} bytes`));
  const text = raw.toString('utf8');
  let json: unknown;
  if (text.trim() !== '') {
    try {
      json = parseWireJson(text);
    } catch (err) {
      return reply(res, route.error(400, `malformed JSON body: ${(err as Error).message}`));
    }
  }
  const query = Object.fromEntries(url.searchParams);
  const queryAll: Record<string, string[]> = Object.create(null);
  for (const [k, v] of url.searchParams) (queryAll[k] ??= []).push(v);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v[0] : v;
  const ip = normalizeIp(req.socket.remoteAddress ?? '');
  const body = json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  const request: HttpRequest = { method: req.method as Method, path: url.pathname, params: {}, query, queryAll, fields: { ...query, ...body }, json, raw, headers, ip, peer: ip };
  let result: HttpResult;
  try {
    result = await route.handler(request);
  } catch (err) {
    if (err instanceof HttpError) result = route.error(err.status, err.message);
    else if (isStorageFull(err)) result = route.error(507, storageFullMessage(err));
    else throw err;
  }
  reply(res, result);
}

/** The body as text, or null past MAX_BODY (the rest is read and dropped, so the client gets the answer). */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.once('end', () => resolve(size > MAX_BODY ? null : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function reply(res: ServerResponse, r: HttpResult): void {
  res.writeHead(r.status ?? 200, { 'content-type': 'application/json; charset=utf-8', ...(r.headers ?? {}) });
  res.end(JSON.stringify(r.json ?? {}));
}
