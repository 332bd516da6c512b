/**
 * Serendipity-Job's envelope (facts §2): `{"code":0,"msg":"Ok!","data":{…}}` and
 * `{"code":1,"msg":"<what is wrong>","data":[]}` (an empty JSON array, as PHP encodes `[]`).
 */
import { HttpError, type HttpResult } from '../sdk/index.ts';

export function ok(data: unknown = {}, msg = 'Ok!'): HttpResult {
  return { status: 200, json: { code: 0, msg, data } };
}

/**
 * The original answers every envelope with HTTP 200; Outpost keeps that, except that auth failures
 * answer 401, rate limiting 429 and internal errors 500 (always with the envelope, never HTML).
 */
export function jobsError(status: number, message: string): HttpResult {
  const http = status === 401 || status === 403 ? 401 : status === 429 ? 429 : status >= 500 ? 500 : 200;
  return { status: http, json: { code: 1, msg: message, data: [] } };
}

/** Thrown by validation and handlers; the host's error path turns it into jobsError(status, message). */
export class JobsError extends HttpError {
  constructor(message: string, status = 400) {
    super(status, message);
  }
}
