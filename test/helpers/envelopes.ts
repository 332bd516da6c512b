/**
 * The error envelopes of the APIs Outpost serves, as their clients parse them: native REST
 * `{error: {status, message}}`, iplive `{code: 1001..1006, msg, info}`, Websoft9
 * `{code: "0", message, data}`, CocoaSyncer `{statusCode, statusString, cocoaBasic}`, and for the dashboard's sign-in form an HTML page. Routes declare theirs in the route listings (errorEnvelope); the
 * tests check that the declaration is one of these and that every refusal has its shape.
 */
import { http, type ApiResponse } from './cluster.ts';

export type Envelope = 'rest' | 'iplive' | 'websoft9' | 'cocoa' | 'html';

export interface ListedRoute {
  method: string;
  path: string;
  auth: 'admin' | 'none';
  errorType: string;
  errorEnvelope: unknown;
}

/** A route listing (controller /api/v1/routes or agent /v1/routes), with each route's envelope named. */
export async function listRoutes(url: string, token: string): Promise<Array<ListedRoute & { envelope: Envelope }>> {
  const r = await http('GET', url, { token });
  if (r.status !== 200) throw new Error(`route listing ${url} answered ${r.status}: ${r.text}`);
  return (r.body.routes as ListedRoute[]).map((route) => ({ ...route, envelope: envelopeOf(route) }));
}

function envelopeOf(route: ListedRoute): Envelope {
  if (route.errorType.startsWith('text/html')) return 'html';
  const kinds: Envelope[] = ['rest', 'iplive', 'websoft9', 'cocoa'];
  const kind = kinds.find((k) => envelopeProblem(k, 400, route.errorEnvelope) === undefined);
  if (!kind) throw new Error(`${route.method} ${route.path} declares an error envelope of no known API: ${route.errorType} ${JSON.stringify(route.errorEnvelope)}`);
  return kind;
}

/** Why body is not a refusal in envelope kind for HTTP status, or undefined when it is. */
export function envelopeProblem(kind: Envelope, status: number, body: unknown, contentType = 'application/json'): string | undefined {
  if (kind === 'html') return contentType.startsWith('text/html') ? undefined : `expected an HTML page, got ${contentType}`;
  const b = body as Record<string, any> | undefined;
  if (!b || typeof b !== 'object' || Array.isArray(b)) return 'body is not a JSON object';
  const keys = Object.keys(b).sort().join(',');
  switch (kind) {
    case 'rest':
      if (keys !== 'error') return `REST envelope has only "error", got keys ${keys}`;
      if (b.error?.status !== status) return `error.status ${b.error?.status} differs from the HTTP status ${status}`;
      return typeof b.error.message === 'string' && b.error.message !== '' ? undefined : 'error.message is not a non-empty string';
    case 'iplive':
      if (keys !== 'code,info,msg') return `iplive envelope is {code, msg, info}, got keys ${keys}`;
      if (!Number.isInteger(b.code) || b.code < 1001 || b.code > 1006) return `iplive error code ${b.code} is not 1001..1006`;
      return typeof b.msg === 'string' && b.msg !== '' ? undefined : 'msg is not a non-empty string';
    case 'cocoa':
      if (keys !== 'cocoaBasic,statusCode,statusString') return `CocoaSyncer envelope is {statusCode, statusString, cocoaBasic}, got keys ${keys}`;
      if (b.statusCode !== status) return `statusCode ${b.statusCode} differs from the HTTP status ${status}`;
      return typeof b.statusString === 'string' && b.statusString !== '' ? undefined : 'statusString is not a non-empty string';
    case 'websoft9':
      if (keys !== 'code,data,message') return `Websoft9 envelope is {code, message, data}, got keys ${keys}`;
      if (b.code !== '0') return `Websoft9 failure code is "0", got ${JSON.stringify(b.code)}`;
      return typeof b.message === 'string' && b.message !== '' ? undefined : 'message is not a non-empty string';
  }
}

/** Fails unless r is a 4xx refusal in kind's envelope (never a crash, never a stack trace). */
export function assertRefused(kind: Envelope, r: ApiResponse, what: string): void {
  if (r.status < 400 || r.status >= 500) throw new Error(`${what}: expected a 4xx refusal, got ${r.status} ${r.text.slice(0, 300)}`);
  const problem = envelopeProblem(kind, r.status, r.body, r.headers.get('content-type') ?? '');
  if (problem) throw new Error(`${what}: ${problem}: ${r.text.slice(0, 300)}`);
  if (/\bat .+\.(ts|js):\d+/.test(r.text)) throw new Error(`${what}: the answer holds a stack trace: ${r.text.slice(0, 300)}`);
}
