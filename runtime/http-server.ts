import HyperExpress from 'hyper-express';
import { createServer } from 'node:net';
import type { Log } from '../plugins/sdk/log.ts';
import { restError, type HttpResult, type Method, type MountedRoute, type Route } from '../plugins/sdk/http.ts';
import { normalizeIp, TrustedProxies } from '../plugins/sdk/client-ip.ts';
import { describeRoute, queryValues, runRoute, wireBody, type AdminCheck, type RoutedRequest } from './http-request.ts';
import { RouteMatcher } from './route-match.ts';

export interface HttpServerOptions {
  log: Log;
  /** Bodies larger than this get the route's error envelope (413). */
  maxBody?: number;
  /** Decides whether a request carries admin rights (bearer token or session). */
  isAdmin: AdminCheck;
  /** Called after every request, for metrics. */
  observe?(route: string, method: string, status: number): void;
  /** Proxies (addresses, CIDR blocks) whose X-Forwarded-For names the client; none by default. */
  trustProxy?: string[];
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
  private readonly proxies: TrustedProxies;
  /** hyper-express takes no route once listening; later ones (a plugin recovering on a retry) are matched here. */
  private readonly late = new RouteMatcher<{ route: Route; method: Method }>();
  private listening = false;

  constructor(private readonly opts: HttpServerOptions) {
    this.maxBody = opts.maxBody ?? 1024 * 1024;
    this.proxies = new TrustedProxies(opts.trustProxy);
    this.app = new HyperExpress.Server({ max_body_length: NO_SERVER_BODY_LIMIT, fast_abort: true });
    this.app.set_error_handler((_req, res, err) => {
      opts.log.error({ err: err.message }, 'unhandled http error');
      sendOrClose(res, restError(500, 'internal error'));
    });
  }

  private readonly mounted: Array<{ method: Method; route: Route }> = [];

  /** Every route mounted so far, in mount order (for GET /api/v1/routes). */
  listRoutes(): MountedRoute[] {
    return this.mounted.map((m) => describeRoute(m.method, m.route));
  }

  mount(routes: Route[]): void {
    for (const route of routes) {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const m of methods) {
        this.mounted.push({ method: m, route });
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
      reply(req, res, result);
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
    const peer = normalizeIp(req.ip);
    const routed: RoutedRequest = {
      method,
      path: req.path,
      params: { ...params },
      query: { ...(req.query_parameters as Record<string, string>) },
      // uWS has no query string (undefined) when the target has none.
      queryAll: queryValues(req.path_query as string | undefined),
      headers: req.headers as Record<string, string>,
      ip: this.proxies.clientIp(peer, req.headers['x-forwarded-for']),
      peer,
      body: req,
    };
    const result = await runRoute(route, routed, { maxBody: this.maxBody, isAdmin: this.opts.isAdmin, log: this.opts.log });
    reply(req, res, result);
    this.opts.observe?.(route.path, method, result.status ?? 200);
  }
}

/**
 * Answered before the whole body arrived (too large, or refused before reading it): hyper-express would
 * write the status line and headers at once and hold the rest until the body is complete — forever for a
 * client that waits for the answer before sending a body it declared (Expect: 100-continue, or a slow
 * upload). Marked received, the answer goes out whole at once; uWS still reads the declared body and
 * discards it, so the connection stays usable for the client's next request. (Closing it instead loses
 * the answer for clients still uploading: fetch reports "other side closed".)
 */
function reply(req: HxRequest, res: HxResponse, result: HttpResult): void {
  const early = !req.received;
  if (early) {
    // Chunks still arriving must be dropped, not buffered: hyper-express would pause() the finished uWS
    // response once its buffer filled, which throws and kills the process. (Its own send() calls this too.)
    (req as unknown as { _body_parser_stop(): void })._body_parser_stop();
    req.received = true;
  }
  sendOrClose(res, result);
}

export function send(res: HxResponse, r: HttpResult): void {
  // Everything that can fail (serialising the body) before the first byte: once the status line is
  // out, a failure could only be followed by a body that contradicts it.
  const { contentType, payload } = wireBody(r);
  res.status(r.status ?? 200);
  for (const [k, v] of Object.entries(r.headers ?? {})) res.header(k, String(v));
  res.header('content-type', contentType);
  res.send(payload);
}

/**
 * Sends r, or, when a status line has already gone out (a failure half-way through a response),
 * closes the connection: a client sees a complete answer or a cut one, never a 200 line over a 500 body.
 */
function sendOrClose(res: HxResponse, r: HttpResult): void {
  if (res.completed) return;
  if (res.initiated) {
    res.close();
    return;
  }
  try {
    send(res, r);
  } catch (err) {
    if (!res.initiated) throw err;
    res.close();
  }
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
