import { nodesInstances, nodesWeighted } from './nodes.ts';
import { onlineRoom, onlineTop, onlineTotal } from './online.ts';
import { pushAll, pushKeys, pushMids, pushRoom } from './push.ts';
import type { GoimHandler } from './context.ts';

/**
 * goim's routes (internal/logic/http/server.go) on the controller. `/nodes/instances` is where the
 * seed document puts instances; the source registers `/goim/nodes/instances`; both are served.
 * goim has no auth: every route needs the admin token unless the config says `open` (DESIGN §5).
 */
export const goimRoutes: Array<{ method: 'GET' | 'POST'; path: string; handler: GoimHandler }> = [
  { method: 'POST', path: '/goim/push/keys', handler: pushKeys },
  { method: 'POST', path: '/goim/push/mids', handler: pushMids },
  { method: 'POST', path: '/goim/push/room', handler: pushRoom },
  { method: 'POST', path: '/goim/push/all', handler: pushAll },
  { method: 'GET', path: '/goim/online/top', handler: onlineTop },
  { method: 'GET', path: '/goim/online/room', handler: onlineRoom },
  { method: 'GET', path: '/goim/online/total', handler: onlineTotal },
  { method: 'GET', path: '/goim/nodes/weighted', handler: nodesWeighted },
  { method: 'GET', path: '/goim/nodes/instances', handler: nodesInstances },
  { method: 'GET', path: '/nodes/instances', handler: nodesInstances },
];
