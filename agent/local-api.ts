/**
 * The agent's local API server on node:http. The controller and every other HTTP server in Outpost run
 * on hyper-express (DESIGN.md); this one serves three small GET routes (plus any routes agent plugins
 * mount) on every edge node, where loading uWS cost the idle agent ~7 MB of its 60 MB budget
 * (docs/benchmarks.md, agent-footprint). Same contract as runtime/http-server.ts: admin check, body
 * limits, the route's own error envelope, an observe() call per request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Log } from '../plugins/sdk/log.ts';
import { restError, type HttpResult, type Method, type MountedRoute, type Route } from '../plugins/sdk/http.ts';
import { describeRoute, queryValues, runRoute, wireBody, type RoutedRequest } from '../runtime/http-request.ts';
import { RouteMatcher } from '../runtime/route-match.ts';
import { normalizeIp } from '../plugins/sdk/client-ip.ts';

export interface LocalApiOptions {
  log: Log;
  /** Bodies larger than this get the route's error envelope (413). */
  maxBody?: number;
  isAdmin(headers: Record<string, string>): boolean;
  observe?(route: string, method: string, status: number): void;
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

export class LocalApi {
  private readonly server: Server;
  private readonly routes = new RouteMatcher<{ route: Route; method: Method }>();
  private readonly maxBody: number;
  private notFound: (path: string) => HttpResult = () => restError(404, 'not found');

  constructor(private readonly opts: LocalApiOptions) {
    this.maxBody = opts.maxBody ?? 1024 * 1024;
    this.server = createServer((req, res) => {
      this.dispatch(req, res).catch((err: unknown) => {
        opts.log.error({ err: (err as Error)?.message }, 'unhandled http error');
        // Once the status line is out, a 500 body would contradict it: cut the connection instead.
        if (res.headersSent) res.destroy();
        else reply(res, restError(500, 'internal error'));
      });
    });
  }

  mount(routes: Route[]): void {
    for (const route of routes) {
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) this.routes.add(method, route.path, { route, method });
    }
  }

  /** Every route mounted so far, in mount order (for GET /v1/routes). */
  listRoutes(): MountedRoute[] {
    return this.routes.values().map((m) => describeRoute(m.method, m.route));
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

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req.url);
    const method = req.method ?? 'GET';
    if (!url) {
      // node:http passes any request target through, e.g. "//[" (an authority with a broken IPv6 host).
      reply(res, restError(400, `malformed request target ${JSON.stringify((req.url ?? '').slice(0, 100))}`));
      this.opts.observe?.('unmatched', KNOWN_METHODS.has(method) ? method : 'OTHER', 400);
      return;
    }
    const found = this.routes.match(method, url.pathname);
    if (!found) {
      const result = this.notFound(url.pathname);
      reply(res, result);
      // One label value for every unknown path, and only known methods: scanners must not mint series.
      this.opts.observe?.('unmatched', KNOWN_METHODS.has(method) ? method : 'OTHER', result.status ?? 404);
      return;
    }
    const { route, method: m } = found.value;
    // The agent trusts no proxy: the client is the socket peer.
    const ip = normalizeIp(req.socket.remoteAddress ?? '');
    const routed: RoutedRequest = { method: m, path: url.pathname, params: found.params, query: Object.fromEntries(url.searchParams), queryAll: queryValues(url.searchParams), headers: flatHeaders(req), ip, peer: ip, body: req };
    const result = await runRoute(route, routed, { maxBody: this.maxBody, isAdmin: (h) => this.opts.isAdmin(h), log: this.opts.log });
    reply(res, result);
    this.opts.observe?.(route.path, m, result.status ?? 200);
  }
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** The request target as a URL on this server, or undefined when it is not a valid one. */
function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://agent');
  } catch {
    return undefined;
  }
}

function reply(res: ServerResponse, r: HttpResult): void {
  const { contentType, payload } = wireBody(r);
  res.statusCode = r.status ?? 200;
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  res.setHeader('content-type', contentType);
  res.end(payload);
}
