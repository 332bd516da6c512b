/**
 * CocoaSyncer's HTTP surface on the controller (router/router.go): liveness at /v1 and /v1/ (and
 * /v1/monitor, which DESIGN.md names), getClusterInfo behind the cocoaSecret, updateClusterInfo
 * refused, the badge and the status page. No route takes a credential out: the view they read has none.
 */
import type { HttpRequest, Route } from '../../sdk/index.ts';
import type { Leader } from '../leader.ts';
import { FailureLimiter } from './auth.ts';
import { badgeAnswer } from './badge.ts';
import { cocoaError, getClusterInfo, STATUS_OK, updateClusterInfo } from './cluster-info.ts';
import { livenessAnswer, statusAnswer } from './status-page.ts';
import { liveCount } from './view.ts';

/** Where the caller reached the controller: CocoaSyncer's apiPort and nodeAddress of the leader. */
export function reachedAt(req: HttpRequest): { apiPort: number; nodeAddress: string } {
  try {
    const url = new URL(`http://${req.headers.host ?? ''}`);
    return { apiPort: Number(url.port || 80), nodeAddress: url.origin };
  } catch {
    return { apiPort: 0, nodeAddress: '' };
  }
}

export function cocoaRoutes(leader: Leader): Route[] {
  const limiter = new FailureLimiter();
  const route = (method: 'GET' | 'POST', path: string, handler: Route['handler']): Route => ({ method, path, auth: 'none', error: cocoaError, handler });
  const liveness = () => livenessAnswer(leader.view().nodeName);
  return [
    route('GET', '/v1', liveness),
    route('GET', '/v1/', liveness),
    route('GET', '/v1/monitor', () => {
      const view = leader.view();
      return { json: { statusCode: 200, statusString: STATUS_OK, nodeName: view.nodeName, workMode: 'leader', live: liveCount(view), total: view.nodes.length } };
    }),
    route('POST', '/v1/getClusterInfo', (req) => getClusterInfo(leader.view(reachedAt(req)), req.json, leader.secret(), { caller: req.ip, now: Date.now(), limiter })),
    route('POST', '/v1/updateClusterInfo', () => updateClusterInfo()),
    route('GET', '/v1/badge', () => {
      const view = leader.view();
      return badgeAnswer(view.nodeName, liveCount(view), view.nodes.length);
    }),
    route('GET', '/v1/status', (req) => statusAnswer(leader.view(reachedAt(req)), leader.lines(), Date.now())),
  ];
}
