import { HttpError, type HttpResult } from '../sdk/index.ts';

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

/** Host statuses (bad body 400, too large 413, 500) map to the nearest iplive code; HTTP status stays 200 like the original. */
export function ipliveError(status: number, message: string): HttpResult {
  let code: number;
  if (status >= 1000) code = status;
  else if (status === 401 || status === 403) code = CODES.token;
  else if (status >= 400 && status < 500) code = CODES.badParam;
  else code = CODES.unknown;
  return { status: 200, json: { code, msg: message, info: {} } };
}
