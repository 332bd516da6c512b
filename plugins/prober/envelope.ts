import { HttpError, restError, type HttpResult } from '../sdk/index.ts';

/** iplive's codes. 1000 success. */
export const CODES = {
  ok: 1000,
  unknown: 1001,
  missing: 1002,
  badParam: 1003,
  token: 1004,
  app: 1005,
  invalid: 1006,
} as const;

/**
 * Thrown by seed handlers. The iplive code travels as the HttpError status so the host's error
 * path (route.error) can turn it back into the envelope; see ipliveError.
 */
export class IpliveError extends HttpError {
  constructor(code: number, message: string) {
    super(code, message);
  }
}

export function ok(msg: string, info: Record<string, unknown> = {}): HttpResult {
  return { json: { code: CODES.ok, msg, info } };
}

/** HTTP status per iplive code, as docs/compat.md sets for every seed API: the body code is the original's. */
const HTTP_STATUS: Record<number, number> = { 1001: 500, 1002: 400, 1003: 400, 1004: 401, 1005: 404, 1006: 400 };

/** Host statuses (bad body 400, auth 401, too large 413, 500) map to the nearest iplive code. */
export function ipliveError(status: number, message: string): HttpResult {
  let code: number;
  if (status >= 1000) code = status;
  else if (status === 401 || status === 403) code = CODES.token;
  else if (status >= 400 && status < 500) code = CODES.badParam;
  else code = CODES.unknown;
  const http = status >= 1000 ? (HTTP_STATUS[code] ?? 400) : status;
  return { status: http, json: { code, msg: message, info: {} } };
}

/** The native REST envelope for the admin routes, which share iplive's parsing: an iplive code becomes its HTTP status. */
export function adminError(status: number, message: string): HttpResult {
  return restError(status >= 1000 ? (HTTP_STATUS[status] ?? 400) : status, message);
}
