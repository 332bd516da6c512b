/**
 * Seed wire formats that more than one plugin answers in, each written once. The native REST
 * envelope is restError (http.ts); formats only one plugin speaks stay in that plugin.
 */
import type { HttpResult } from './http.ts';

/**
 * Websoft9's envelope (server-stats' searchServer, app-store's app routes): `code` "1" success,
 * "0" failure, a `message`, and `data` ({} on a failure unless the refusal carries the app's state).
 */
export function websoft9Ok(message: string, data: unknown): HttpResult {
  return { json: { code: '1', message, data } };
}

export function websoft9Error(status: number, message: string, data: unknown = {}): HttpResult {
  return { status, json: { code: '0', message, data } };
}
