/**
 * Requests without sockets: a route table per host, filled by the runtime's RouteTable exactly as the
 * servers are, and a request injector that runs a route through the runtime's request path (admin
 * check, body limits and parsing, the route's own error envelope), then encodes the answer as the
 * servers put it on the wire.
 */
import { Readable } from 'node:stream';
import { restError, type HttpResult, type Method, type Route } from '../http.ts';
import type { Log } from '../log.ts';
import { queryValues, runRoute, wireBody, type RoutedRequest } from '../../../runtime/http-request.ts';
import { RouteMatcher } from '../../../runtime/route-match.ts';

export interface InjectRequest {
  method: Method;
  /** Path and query, e.g. `/searchServer?node=n1`. */
  url: string;
  /** An object or array is sent as JSON, a string or Buffer as is (set its content-type in headers). */
  body?: unknown;
  /** Sent as an `application/x-www-form-urlencoded` body (iplive and Websoft9 clients post forms). */
  form?: Record<string, string>;
  headers?: Record<string, string>;
  /** Send the harness admin token (default true); false to see what an anonymous client gets. */
  admin?: boolean;
  /** The client address the route sees (default 127.0.0.1). */
  ip?: string;
  /** Which host's routes (default: the controller's). */
  host?: 'controller' | 'agent';
}

export interface InjectResponse {
  status: number;
  contentType: string;
  headers: Record<string, string>;
  /** The payload as sent on the wire. */
  text: string;
  /** The payload parsed as JSON when it is JSON, else undefined. */
  json: any;
}

export const ADMIN_TOKEN = 'opa_harness_admin_token';

/** One host's routes, as its HTTP server would hold them. */
export class InMemoryRoutes {
  private readonly routes = new RouteMatcher<{ route: Route; method: Method }>();

  mount(routes: Route[]): void {
    for (const route of routes) for (const method of Array.isArray(route.method) ? route.method : [route.method]) this.routes.add(method, route.path, { route, method });
  }

  async inject(req: InjectRequest, log: Log, maxBody = 1024 * 1024): Promise<InjectResponse> {
    const url = new URL(req.url, 'http://harness');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    let payload: string | Buffer = '';
    if (req.form) {
      payload = new URLSearchParams(req.form).toString();
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    } else if (typeof req.body === 'string' || Buffer.isBuffer(req.body)) {
      payload = req.body;
    } else if (req.body !== undefined) {
      payload = JSON.stringify(req.body);
      headers['content-type'] ??= 'application/json';
    }
    if (payload.length) headers['content-length'] = String(Buffer.byteLength(payload));
    if (req.admin !== false) headers.authorization ??= `Bearer ${ADMIN_TOKEN}`;
    const found = this.routes.match(req.method, url.pathname);
    const ip = req.ip ?? '127.0.0.1';
    let result: HttpResult;
    if (!found) {
      result = restError(404, `no route for ${req.method} ${url.pathname}`);
    } else {
      const routed: RoutedRequest = { method: found.value.method, path: url.pathname, params: found.params, query: Object.fromEntries(url.searchParams), queryAll: queryValues(url.searchParams), headers, ip, peer: ip, body: Readable.from([Buffer.from(payload)]) };
      result = await runRoute(found.value.route, routed, { maxBody, isAdmin: (h) => h.authorization === `Bearer ${ADMIN_TOKEN}`, log });
    }
    const wire = wireBody(result);
    let json: unknown;
    try {
      json = wire.contentType.includes('json') ? JSON.parse(wire.payload) : undefined;
    } catch {
      json = undefined;
    }
    return { status: result.status ?? 200, contentType: wire.contentType, headers: { ...(result.headers ?? {}) }, text: wire.payload, json };
  }
}
