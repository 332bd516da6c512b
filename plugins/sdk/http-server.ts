import HyperExpress from 'hyper-express';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import type { Log } from './log.ts';
import { HttpError, type HttpRequest, type HttpResult, type Method, type Route } from './http.ts';

export interface HttpServerOptions {
  log: Log;
  /** Bodies larger than this get the route's error envelope (413). */
  maxBody?: number;
  /** Decides whether a request carries admin rights (bearer token or session). */
  isAdmin(headers: Record<string, string>): boolean;
  /** Called after every request, for metrics. */
  observe?(route: string, method: string, status: number): void;
}

type HxRequest = HyperExpress.Request;
type HxResponse = HyperExpress.Response;

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/**
 * hyper-express' own limit would cut a too-large body with a bare 413 or a reset before any route sees it;
 * the limit is enforced in parse() instead, so every oversized body gets the API's own envelope.
 */
const NO_SERVER_BODY_LIMIT = Number.MAX_SAFE_INTEGER;

export class HttpServer {
  readonly app: HyperExpress.Server;
  private readonly maxBody: number;

  constructor(private readonly opts: HttpServerOptions) {
    this.maxBody = opts.maxBody ?? 1024 * 1024;
    this.app = new HyperExpress.Server({ max_body_length: NO_SERVER_BODY_LIMIT, fast_abort: true });
    this.app.set_error_handler((_req, res, err) => {
      opts.log.error({ err: err.message }, 'unhandled http error');
      if (!res.completed) res.status(500).json({ error: { status: 500, message: 'internal error' } });
    });
  }

  mount(routes: Route[]): void {
    for (const route of routes) {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const m of methods) {
        const register = this.app[m.toLowerCase() as 'get'].bind(this.app);
        register(route.path, (req: HxRequest, res: HxResponse) => this.handle(route, m, req, res));
      }
    }
  }

  /** Adds the fallback 404 last; call after every mount. */
  finish(notFound: (path: string) => HttpResult): void {
    this.app.set_not_found_handler((req, res) => {
      const result = notFound(req.path);
      send(res, result);
      // One label value for every unknown path, and only known methods: scanners must not mint series.
      const method = KNOWN_METHODS.has(req.method) ? req.method : 'OTHER';
      this.opts.observe?.('unmatched', method, result.status ?? 404);
    });
  }

  async listen(host: string, port: number): Promise<number> {
    // uWS sets SO_REUSEADDR only when given an explicit port: a server first bound to port 0 could not be
    // restarted on its port for a minute after a crash (its accepted sockets linger in TIME_WAIT).
    // So ask the kernel for a free port and bind it explicitly, retrying if another process takes it first.
    for (let attempt = 0; port === 0 && attempt < 5; attempt++) {
      try {
        await this.app.listen(await freePort(host), host);
        return this.app.port;
      } catch {
        // taken between the probe and the bind; probe again
      }
    }
    try {
      await this.app.listen(port, host);
    } catch (err) {
      throw new Error(`cannot listen on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return this.app.port;
  }

  close(): void {
    this.app.close();
  }

  private async handle(route: Route, method: Method, req: HxRequest, res: HxResponse): Promise<void> {
    let result: HttpResult;
    try {
      const headers = req.headers as Record<string, string>;
      if (route.auth === 'admin' && !this.opts.isAdmin(headers)) {
        result = route.error(401, 'admin token required: send "Authorization: Bearer <admin token>"');
      } else {
        const parsed = await this.parse(route, method, req);
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
    if (!res.completed) send(res, result);
    this.opts.observe?.(route.path, method, result.status ?? 200);
  }

  private async parse(route: Route, method: Method, req: HxRequest): Promise<{ ok: true; req: HttpRequest } | { ok: false; reject: HttpResult }> {
    const reject = (status: number, message: string) => ({ ok: false as const, reject: route.error(status, message) });
    const headers = req.headers as Record<string, string>;
    const query: Record<string, string> = { ...(req.query_parameters as Record<string, string>) };
    const declared = Number(headers['content-length'] ?? 0);
    if (declared > this.maxBody) return reject(413, `body too large: ${declared} bytes, limit ${this.maxBody}`);
    let raw = '';
    // A request with neither a length nor chunked encoding has no body, and its stream would never end.
    const hasBody = declared > 0 || /chunked/i.test(headers['transfer-encoding'] ?? '');
    if (method !== 'GET' && hasBody) {
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
    return {
      ok: true,
      req: { method, path: req.path, params: { ...(req.path_parameters as Record<string, string>) }, query, fields: { ...query, ...body }, json, headers, ip: remoteIp(req) },
    };
  }
}

/**
 * The body as text, or null once it passes limit. Counting as it streams keeps a chunked body without a
 * content-length from being buffered whole; the rest of a refused body is discarded as it arrives.
 */
function readBody(req: HxRequest, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > limit) resolve(null);
        else chunks.push(Buffer.from(chunk));
        done();
      },
      final(done) {
        resolve(size > limit ? null : Buffer.concat(chunks).toString('utf8'));
        done();
      },
    });
    sink.once('error', reject);
    req.pipe(sink);
  });
}

function remoteIp(req: HxRequest): string {
  const ip = req.ip;
  // uWS reports IPv4 peers as IPv4-mapped IPv6 in some builds.
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export function send(res: HxResponse, r: HttpResult): void {
  res.status(r.status ?? 200);
  for (const [k, v] of Object.entries(r.headers ?? {})) res.header(k, v);
  if (r.text !== undefined) {
    res.header('content-type', r.contentType ?? 'text/plain; charset=utf-8');
    res.send(r.text);
  } else {
    res.header('content-type', r.contentType ?? 'application/json; charset=utf-8');
    res.send(JSON.stringify(r.json ?? {}));
  }
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip === '0000:0000:0000:0000:0000:0000:0000:0001';
}

/** A port the kernel considers free on host right now. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
