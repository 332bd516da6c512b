/**
 * CocoaSyncer's JSON endpoints as the leader answers them. Every answer is HTTP 200 with
 * `{statusCode, statusString, cocoaBasic}` (model.ServerReturn); `cocoaBasic` keeps the original's key
 * order but never carries a credential: no cocoaSecret, no cloudPlatformInfo keys, no DSN.
 */
import type { HttpResult } from '../../sdk/http.ts';
import type { Secret } from '../../sdk/secret.ts';
import type { FailureLimiter } from './auth.ts';
import type { ClusterView } from './view.ts';

export const STATUS_OK = 'MafuMafu~';
export const STATUS_UNAUTHORIZED = 'Unauthorized! You are not Cocoa!';
export const STATUS_NOT_ALLOWED = 'Not Allowed! Cocoa is soooo kawaii, Do you still sure you really want to eat Cocoa???';

/** Go's zero time.Time as encoding/json writes it. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A zero-valued model.CocoaBasic exactly as Go encodes it (nil slices are null). */
export function zeroCocoaBasic(): Record<string, unknown> {
  return {
    apiPort: 0,
    nodeName: '',
    nodeCode: '',
    nodeAddress: '',
    workMode: '',
    cocoaSecret: '',
    reverseProxy: false,
    otherCocoaSyncer: null,
    cocoaManagedService: null,
    cloudPlatformInfo: null,
    timeout: 0,
    DataBaseType: '',
    Dsn: '',
    createdAt: ZERO_TIME,
    updatedAt: ZERO_TIME,
    configImported: false,
  };
}

const rfc3339 = (ms: number | null) => (ms === null ? ZERO_TIME : new Date(ms).toISOString());

/** The leader's cocoaBasic: the original's keys in its order, minus every credential. */
export function cocoaBasic(view: ClusterView): Record<string, unknown> {
  const services = view.services.map((s) => ({ serviceName: s.serviceName, domain: s.domain, record: s.record, platformProvider: s.platformProvider }));
  return {
    apiPort: view.apiPort,
    nodeName: view.nodeName,
    nodeAddress: view.nodeAddress,
    workMode: 'leader',
    reverseProxy: false,
    otherCocoaSyncer: view.nodes.map((n) => ({
      nodeName: n.name,
      nodeAddress: n.address,
      workMode: 'follower',
      ISPs: [...n.ISPs],
      networkType: n.networkType,
      statusCode: n.up ? 200 : 504,
      watchDog: rfc3339(n.lastBeat),
      // CocoaSyncer's `service` command added every service to every node.
      cocoaManagedService: services.map((s) => ({ ...s })),
    })),
    cocoaManagedService: services,
    timeout: view.timeoutMinutes,
    createdAt: rfc3339(view.createdAt),
    updatedAt: rfc3339(view.updatedAt),
    configImported: true,
  };
}

const answer = (statusCode: number, statusString: string, basic: Record<string, unknown>): HttpResult => ({ status: 200, json: { statusCode, statusString, cocoaBasic: basic } });

/**
 * What the runtime answers on CocoaSyncer's routes when a request cannot reach the handler (malformed
 * JSON, too large, plugin stopped): the original's envelope, with the HTTP status and the message in
 * statusString. (The original itself never got that far: it ignored bind errors.)
 */
export function cocoaError(status: number, message: string): HttpResult {
  return { status, json: { statusCode: status, statusString: message, cocoaBasic: zeroCocoaBasic() } };
}

export interface CallerGuard {
  caller: string;
  now: number;
  limiter: FailureLimiter;
}

/**
 * `POST /v1/getClusterInfo {"cocoaSecret"}`. An unreadable body is a wrong secret (the original ignored
 * bind errors). A caller over the failure limit gets the same 401 without its secret being checked.
 */
export function getClusterInfo(view: ClusterView, body: unknown, secret: Secret | undefined, guard?: CallerGuard): HttpResult {
  const unauthorized = () => answer(401, STATUS_UNAUTHORIZED, zeroCocoaBasic());
  if (guard?.limiter.blocked(guard.caller, guard.now)) return unauthorized();
  const presented = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>).cocoaSecret : undefined;
  if (!secret?.matches(presented)) {
    guard?.limiter.fail(guard.caller, guard.now);
    return unauthorized();
  }
  return answer(200, STATUS_OK, cocoaBasic(view));
}

/** `POST /v1/updateClusterInfo`: the leader takes no pushed cluster data, from anyone; decided before any secret check. */
export function updateClusterInfo(): HttpResult {
  return answer(405, STATUS_NOT_ALLOWED, zeroCocoaBasic());
}
