import { StorageWriteError, isStorageFull } from './durable/storage-error.ts';

/**
 * The HTTP surface plugins see. Hosts adapt it to their server, so a plugin never depends on the
 * server library and every route gets the same body limits and malformed-input handling.
 */
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

export interface HttpRequest {
  method: Method;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  /** Every value of each query parameter, in order: APIs that repeat a parameter (`keys=a&keys=b`) read it here. */
  queryAll: Record<string, string[]>;
  /** Query, then form or JSON body fields merged over it (seed APIs accept either). */
  fields: Record<string, unknown>;
  /** The parsed JSON body when one was sent, else undefined. */
  json: unknown;
  /** The body's bytes as received (empty without a body). */
  raw: Buffer;
  headers: Record<string, string>;
  /** The client's address: the socket peer, or the client a trusted proxy names (client-ip.ts). */
  ip: string;
  /** The socket peer itself (a proxy, when one relays): what loopback exemptions must look at. */
  peer: string;
}

export interface HttpResult {
  status?: number;
  json?: unknown;
  text?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export type Handler = (req: HttpRequest) => Promise<HttpResult> | HttpResult;

/**
 * `admin`: needs the admin bearer token (or dashboard session); `none`: the plugin checks its own auth.
 */
export type RouteAuth = 'admin' | 'none';

export interface Route {
  method: Method | Method[];
  path: string;
  auth: RouteAuth;
  handler: Handler;
  /** Builds the API's own error envelope; used for bad bodies and thrown errors so clients see their format. */
  error: (status: number, message: string) => HttpResult;
  /**
   * The body is an opaque message, not form or JSON fields: the host does not decode it (`fields` holds
   * the query only, `json` is undefined, nothing is refused as malformed); the handler reads `raw`.
   */
  rawBody?: boolean;
}

/** What a server lists about a mounted route (no handler): enough for clients and tests to find every endpoint. */
export interface MountedRoute {
  method: Method;
  path: string;
  auth: RouteAuth;
  /** How this route answers a 400 (its API's error envelope): the content type and the JSON body, if JSON. */
  errorType: string;
  errorEnvelope: unknown;
}

/** Thrown by handlers to answer with the route's error envelope and a message naming the problem. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * For a caught error that is the caller's fault: an HttpError with `status` and its message. A
 * storage failure (disk full) is rethrown as is, so the client gets 507 rather than a misleading 4xx.
 */
export function clientError(status: number, err: unknown): Error {
  if (err instanceof StorageWriteError || isStorageFull(err)) return err as Error;
  return new HttpError(status, (err as Error)?.message ?? String(err));
}

/** The native REST envelope: {error: {code, message}}. */
export function restError(status: number, message: string): HttpResult {
  return { status, json: { error: { status, message } } };
}

export function str(fields: Record<string, unknown>, name: string): string | undefined {
  const v = fields[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new HttpError(400, `field "${name}" must be a string`);
}
