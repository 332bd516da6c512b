import { nodesInstances, nodesWeighted } from './nodes.ts';
import { onlineRoom, onlineTop, onlineTotal } from './online.ts';
import { pushAll, pushKeys, pushMids, pushRoom } from './push.ts';
import type { GoimHandler } from './context.ts';

/**
 * goim's routes (internal/logic/http/server.go) on the controller. `/nodes/instances` is where the
 * seed document puts instances; the source registers `/goim/nodes/instances`; both are served.
 * `push` routes need the admin token unless the config says `open`.
 */
export const goimRoutes: Array<{ method: 'GET' | 'POST'; path: string; push: boolean; handler: GoimHandler }> = [
  { method: 'POST', path: '/goim/push/keys', push: true, handler: pushKeys },
  { method: 'POST', path: '/goim/push/mids', push: true, handler: pushMids },
  { method: 'POST', path: '/goim/push/room', push: true, handler: pushRoom },
  { method: 'POST', path: '/goim/push/all', push: true, handler: pushAll },
  { method: 'GET', path: '/goim/online/top', push: false, handler: onlineTop },
  { method: 'GET', path: '/goim/online/room', push: false, handler: onlineRoom },
  { method: 'GET', path: '/goim/online/total', push: false, handler: onlineTotal },
  { method: 'GET', path: '/goim/nodes/weighted', push: false, handler: nodesWeighted },
  { method: 'GET', path: '/goim/nodes/instances', push: false, handler: nodesInstances },
  { method: 'GET', path: '/nodes/instances', push: false, handler: nodesInstances },
];
