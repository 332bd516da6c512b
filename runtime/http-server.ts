import HyperExpress from 'hyper-express';
import { createServer } from 'node:net';
import type { Log } from '../plugins/sdk/log.ts';
import type { HttpResult, Method, Route } from '../plugins/sdk/http.ts';
import { plainIp, runRoute, wireBody, type RoutedRequest } from './http-request.ts';
import { RouteMatcher } from './route-match.ts';

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
  /** hyper-express takes no route once listening; later ones (a plugin recovering on a retry) are matched here. */
  private readonly late = new RouteMatcher<{ route: Route; method: Method }>();
  private listening = false;

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
        if (this.listening) {
          this.late.add(m, route.path, { route, method: m });
          continue;
        }
        const register = this.app[m.toLowerCase() as 'get'].bind(this.app);
        register(route.path, (req: HxRequest, res: HxResponse) => this.handle(route, m, req, res));
      }
    }
  }

  /** Adds the fallback 404 last; call after every mount. */
  finish(notFound: (path: string) => HttpResult): void {
    this.app.set_not_found_handler((req, res) => {
      const late = this.late.match(req.method, req.path);
      if (late) return this.handle(late.value.route, late.value.method, req, res, late.params);
      const result = notFound(req.path);
      send(res, result);
      // One label value for every unknown path, and only known methods: scanners must not mint series.
      const method = KNOWN_METHODS.has(req.method) ? req.method : 'OTHER';
      this.opts.observe?.('unmatched', method, result.status ?? 404);
    });
  }

  async listen(host: string, port: number): Promise<number> {
    const bound = await listenHyperExpress(this.app, host, port);
    this.listening = true;
    return bound;
  }

  close(): void {
    this.app.close();
  }

  private async handle(route: Route, method: Method, req: HxRequest, res: HxResponse, params: Record<string, string> = req.path_parameters): Promise<void> {
    const routed: RoutedRequest = {
      method,
      path: req.path,
      params: { ...params },
      query: { ...(req.query_parameters as Record<string, string>) },
      headers: req.headers as Record<string, string>,
      ip: plainIp(req.ip),
      body: req,
    };
    const result = await runRoute(route, routed, { maxBody: this.maxBody, isAdmin: (h) => this.opts.isAdmin(h), log: this.opts.log });
    if (!res.completed) send(res, result);
    this.opts.observe?.(route.path, method, result.status ?? 200);
  }
}

export function send(res: HxResponse, r: HttpResult): void {
  res.status(r.status ?? 200);
  for (const [k, v] of Object.entries(r.headers ?? {})) res.header(k, v);
  const { contentType, payload } = wireBody(r);
  res.header('content-type', contentType);
  res.send(payload);
}

/** Binds a hyper-express server; resolves with the port, or rejects naming host and port. */
export async function listenHyperExpress(app: HyperExpress.Server, host: string, port: number): Promise<number> {
  // uWS sets SO_REUSEADDR only when given an explicit port: a server first bound to port 0 could not be
  // restarted on its port for a minute after a crash (its accepted sockets linger in TIME_WAIT).
  // So ask the kernel for a free port and bind it explicitly, retrying if another process takes it first.
  for (let attempt = 0; port === 0 && attempt < 5; attempt++) {
    try {
      await app.listen(await freePort(host), host);
      return app.port;
    } catch {
      // taken between the probe and the bind; probe again
    }
  }
  try {
    await app.listen(port, host);
  } catch (err) {
    throw new Error(`cannot listen on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return app.port;
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
