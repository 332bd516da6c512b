/**
 * The agent's local API server on node:http. The controller and every other HTTP server in Outpost run
 * on hyper-express (DESIGN.md); this one serves three small GET routes (plus any routes agent plugins
 * mount) on every edge node, where loading uWS cost the idle agent ~7 MB of its 60 MB budget
 * (docs/benchmarks.md, agent-footprint). Same contract as plugins/sdk/http-server.ts: admin check, body
 * limits, the route's own error envelope, an observe() call per request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Log } from '../plugins/sdk/log.ts';
import { HttpError, type HttpRequest, type HttpResult, type Method, type Route } from '../plugins/sdk/http.ts';

export interface LocalApiOptions {
  log: Log;
  /** Bodies larger than this get the route's error envelope (413). */
  maxBody?: number;
  isAdmin(headers: Record<string, string>): boolean;
  observe?(route: string, method: string, status: number): void;
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

interface Mounted {
  route: Route;
  method: Method;
  /** Path segments; ":name" segments capture. */
  segments: string[];
}

type Parsed = { ok: true; req: HttpRequest } | { ok: false; reject: HttpResult };

export class LocalApi {
  private readonly server: Server;
  private readonly routes: Mounted[] = [];
  private readonly maxBody: number;
  private notFound: (path: string) => HttpResult = () => ({ status: 404, json: { error: { status: 404, message: 'not found' } } });

  constructor(private readonly opts: LocalApiOptions) {
    this.maxBody = opts.maxBody ?? 1024 * 1024;
    this.server = createServer((req, res) => {
      this.dispatch(req, res).catch((err: unknown) => {
        opts.log.error({ err: (err as Error)?.message }, 'unhandled http error');
        if (!res.headersSent) reply(res, { status: 500, json: { error: { status: 500, message: 'internal error' } } });
      });
    });
  }

  mount(routes: Route[]): void {
    for (const route of routes) {
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
        this.routes.push({ route, method, segments: splitPath(route.path) });
      }
    }
  }

  /** The answer for paths no route matches. */
  finish(notFound: (path: string) => HttpResult): void {
    this.notFound = notFound;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  private match(method: string, path: string): { mounted: Mounted; params: Record<string, string> } | undefined {
    const parts = splitPath(path);
    for (const mounted of this.routes) {
      if (mounted.method !== method || mounted.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const ok = mounted.segments.every((s, i) => {
        if (s.startsWith(':')) {
          params[s.slice(1)] = safeDecode(parts[i]);
          return true;
        }
        return s === parts[i];
      });
      if (ok) return { mounted, params };
    }
    return undefined;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const method = req.method ?? 'GET';
    const found = this.match(method, url.pathname);
    if (!found) {
      const result = this.notFound(url.pathname);
      reply(res, result);
      // One label value for every unknown path, and only known methods: scanners must not mint series.
      this.opts.observe?.('unmatched', KNOWN_METHODS.has(method) ? method : 'OTHER', result.status ?? 404);
      return;
    }
    const { route, method: m } = found.mounted;
    const headers = flatHeaders(req);
    let result: HttpResult;
    try {
      if (route.auth === 'admin' && !this.opts.isAdmin(headers)) {
        result = route.error(401, 'admin token required: send "Authorization: Bearer <admin token>"');
      } else {
        const parsed = await this.parse(route, m, req, url, headers, found.params);
        result = parsed.ok ? await route.handler(parsed.req) : parsed.reject;
      }
    } catch (err) {
      if (err instanceof HttpError) {
        result = route.error(err.status, err.message);
      } else {
        this.opts.log.error({ err: (err as Error)?.message, route: route.path }, 'handler failed');
        result = route.error(500, 'internal error');
      }
    }
    reply(res, result);
    this.opts.observe?.(route.path, m, result.status ?? 200);
  }

  private async parse(route: Route, method: Method, req: IncomingMessage, url: URL, headers: Record<string, string>, params: Record<string, string>): Promise<Parsed> {
    const reject = (status: number, message: string): Parsed => ({ ok: false, reject: route.error(status, message) });
    const query = Object.fromEntries(url.searchParams);
    const declared = Number(headers['content-length'] ?? 0);
    if (declared > this.maxBody) return reject(413, `body too large: ${declared} bytes, limit ${this.maxBody}`);
    let raw = '';
    if (method !== 'GET') {
      const body = await readBody(req, this.maxBody);
      if (body === null) return reject(413, `body too large: limit ${this.maxBody} bytes`);
      raw = body;
    }
    let json: unknown;
    let body: Record<string, unknown> = {};
    const type = (headers['content-type'] ?? '').toLowerCase();
    const looksJson = /^\s*[[{]/.test(raw);
    if (raw.trim() !== '') {
      if (type.includes('application/json') || (!type.includes('form-urlencoded') && looksJson)) {
        try {
          json = JSON.parse(raw);
        } catch (err) {
          return reject(400, `malformed JSON body: ${(err as Error).message}`);
        }
        if (json && typeof json === 'object' && !Array.isArray(json)) body = json as Record<string, unknown>;
      } else {
        body = Object.fromEntries(new URLSearchParams(raw));
      }
    }
    const ip = req.socket.remoteAddress ?? '';
    return {
      ok: true,
      req: { method, path: url.pathname, params, query, fields: { ...query, ...body }, json, headers, ip: ip.startsWith('::ffff:') ? ip.slice(7) : ip },
    };
  }
}

const splitPath = (p: string) => p.split('/').filter((s) => s !== '');

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/**
 * The body as text, or null once it passes limit. The rest of a refused body is still read and
 * discarded, so the client gets the 413 envelope rather than a reset and the connection stays usable.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
      else if (!refused) {
        refused = true;
        chunks = [];
        resolve(null);
      }
    });
    req.on('end', () => resolve(size > limit ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, r: HttpResult): void {
  res.statusCode = r.status ?? 200;
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  if (r.text !== undefined) {
    res.setHeader('content-type', r.contentType ?? 'text/plain; charset=utf-8');
    res.end(r.text);
  } else {
    res.setHeader('content-type', r.contentType ?? 'application/json; charset=utf-8');
    res.end(JSON.stringify(r.json ?? {}));
  }
}
