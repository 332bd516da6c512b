/**
 * What both HTTP servers do with a request once routed, whatever carries it: the controller's
 * hyper-express server (http-server.ts) and the agent's node:http one (agent/local-api.ts). Kept free
 * of hyper-express so the agent does not load uWS.
 */
import { Writable } from 'node:stream';
import { HttpError, type HttpRequest, type HttpResult, type Method, type MountedRoute, type Route } from '../plugins/sdk/http.ts';
import type { Log } from '../plugins/sdk/log.ts';
import { isStorageFull, isStorageUnavailable, StorageConflictError, storageFullMessage, storageUnavailableMessage } from '../plugins/sdk/durable/storage-error.ts';
import { parseWireJson } from '../plugins/sdk/json.ts';
import { checkId } from '../plugins/sdk/ids.ts';

export type Parsed = { ok: true; req: HttpRequest } | { ok: false; reject: HttpResult };

/** A routed request before its body is read: the fields and JSON come from the body stream. */
export type RoutedRequest = Omit<HttpRequest, 'fields' | 'json' | 'raw'> & {
  /** The body stream (both servers' requests can pipe). */
  body: { pipe(dest: Writable): unknown };
};

/**
 * Whether a request has admin rights: true, false (no credential: 401), or why a credential it carries
 * may not be used for this request (403), e.g. a dashboard session without its CSRF token.
 */
export type AdminCheck = (headers: Record<string, string>, method: Method) => boolean | string;

/** Runs the route: admin check, body parse, handler; any failure becomes the route's own error envelope. */
export async function runRoute(route: Route, r: RoutedRequest, opts: { maxBody: number; isAdmin: AdminCheck; log: Log }): Promise<HttpResult> {
  try {
    if (route.auth === 'admin') {
      const admitted = opts.isAdmin(r.headers, r.method);
      if (typeof admitted === 'string') return route.error(403, admitted);
      if (!admitted) return route.error(401, 'admin token required: send "Authorization: Bearer <admin token>"');
    }
    // Every path parameter names something by id (node, token, webhook, delivery, plugin, app): one check for all routes.
    for (const [name, value] of Object.entries(r.params)) checkId(value, name);
    const parsed = await parseRequest(route, r, opts.maxBody);
    return parsed.ok ? await route.handler(parsed.req) : parsed.reject;
  } catch (err) {
    if (err instanceof HttpError) return route.error(err.status, err.message);
    // Nothing wrong with the request: there was no room to record it (507 Insufficient Storage).
    if (isStorageFull(err)) {
      opts.log.error({ err: (err as Error).message, route: route.path }, 'storage full');
      return route.error(507, storageFullMessage(err));
    }
    // Nor here: the database holding the controller's state is unreachable (503, retry later).
    if (isStorageUnavailable(err)) {
      opts.log.error({ err: (err as Error).message, route: route.path }, 'storage unavailable');
      return route.error(503, storageUnavailableMessage(err));
    }
    // Another controller changed the same record at the same moment: nothing was written.
    if (err instanceof StorageConflictError) return route.error(409, err.message);
    opts.log.error({ err: (err as Error)?.message, route: route.path }, 'handler failed');
    return route.error(500, 'internal error');
  }
}

/** Reads and decodes the body (JSON or form) and merges it over the query into `fields`. */
export async function parseRequest(route: Route, r: RoutedRequest, maxBody: number): Promise<Parsed> {
  const reject = (status: number, message: string): Parsed => ({ ok: false, reject: route.error(status, message) });
  const declared = Number(r.headers['content-length'] ?? 0);
  if (declared > maxBody) return reject(413, `body too large: ${declared} bytes, limit ${maxBody}`);
  let bytes: Buffer = NO_BODY;
  // A request with neither a length nor chunked encoding has no body, and its stream might never end.
  const hasBody = declared > 0 || /chunked/i.test(r.headers['transfer-encoding'] ?? '');
  if (r.method !== 'GET' && hasBody) {
    const read = await readBody(r.body, maxBody);
    if (read === null) return reject(413, `body too large: limit ${maxBody} bytes`);
    bytes = read;
  }
  let json: unknown;
  let body: Record<string, unknown> = {};
  const type = (r.headers['content-type'] ?? '').toLowerCase();
  const raw = route.rawBody ? '' : bytes.toString('utf8');
  if (raw.trim() !== '') {
    if (type.includes('application/json') || (!type.includes('form-urlencoded') && /^\s*[[{]/.test(raw))) {
      try {
        json = parseWireJson(raw);
      } catch (err) {
        return reject(400, `malformed JSON body: ${(err as Error).message}`);
      }
      if (json && typeof json === 'object' && !Array.isArray(json)) body = json as Record<string, unknown>;
    } else {
      body = Object.fromEntries(new URLSearchParams(raw));
    }
  }
  return { ok: true, req: { method: r.method, path: r.path, params: r.params, query: r.query, queryAll: r.queryAll, fields: { ...r.query, ...body }, json, raw: bytes, headers: r.headers, ip: r.ip, peer: r.peer } };
}

const NO_BODY = Buffer.alloc(0);

/** Every value of each parameter of a query string (`a=1&a=2` → {a: ['1', '2']}), decoded as URLSearchParams does. */
export function queryValues(search: string | URLSearchParams | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  for (const [k, v] of search instanceof URLSearchParams ? search : new URLSearchParams(search ?? '')) (out[k] ??= []).push(v);
  return out;
}

/**
 * The body's bytes, or null once it passes limit. Counting as it streams keeps a chunked body without a
 * content-length from being buffered whole; the rest of a refused body is read and discarded, so the
 * client gets the 413 envelope rather than a reset.
 */
export function readBody(src: { pipe(dest: Writable): unknown }, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size <= limit) chunks.push(Buffer.from(chunk));
        else if (!refused) {
          refused = true;
          chunks = [];
          resolve(null);
        }
        done();
      },
      final(done) {
        resolve(size > limit ? null : Buffer.concat(chunks));
        done();
      },
    });
    sink.once('error', reject);
    src.pipe(sink);
  });
}

/** The wire form of a result: its content type and payload (text as given, anything else as JSON). */
export function wireBody(r: HttpResult): { contentType: string; payload: string } {
  if (r.text !== undefined) return { contentType: r.contentType ?? 'text/plain; charset=utf-8', payload: r.text };
  return { contentType: r.contentType ?? 'application/json; charset=utf-8', payload: JSON.stringify(r.json ?? {}) };
}

/** A mounted route as the route listings show it. */
export function describeRoute(method: Method, route: Route): MountedRoute {
  const example = route.error(400, 'example');
  return { method, path: route.path, auth: route.auth, errorType: wireBody(example).contentType, errorEnvelope: example.json ?? null };
}
