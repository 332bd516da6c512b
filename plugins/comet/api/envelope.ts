/** goim's result.go: `{"code", "message", "data"?}`; codes OK 0, RequestErr -400, ServerErr -500. */
export const OK = 0;
export const REQUEST_ERR = -400;
export const SERVER_ERR = -500;

export interface GoimResult {
  status: number;
  json: { code: number; message: string; data?: unknown };
  /** For a push: how many nodes it went to (the dashboard's test push shows it; never in goim's answer). */
  reached?: number;
}

/** result(c, data, code): HTTP 200, empty message, data omitted when there is none. */
export function result(code: number, data?: unknown): GoimResult {
  return { status: 200, json: data === undefined ? { code, message: '' } : { code, message: '', data } };
}

/** A bind or validation error: gin's AbortWithError(400) has written the status before the body. */
export function bindError(message: string): GoimResult {
  return { status: 400, json: { code: REQUEST_ERR, message } };
}

/** The route's error envelope for what the host refuses (no admin token 401, body too large 413, a crash 500). */
export function goimError(status: number, message: string): GoimResult {
  return { status, json: { code: status >= 500 ? SERVER_ERR : REQUEST_ERR, message } };
}
