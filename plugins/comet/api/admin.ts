import { describeIssues, HttpError, restError, z, type Route } from '../../sdk/index.ts';
import type { GoimContext } from './context.ts';
import { pushKeys, pushRoom } from './push.ts';
import type { CometStatus } from '../status.ts';

const pushBody = z.object({
  to: z.enum(['key', 'room']),
  /** A connection key, or a room as `type://id`. */
  target: z.string().min(1, 'target is empty').max(4096),
  operation: z.coerce.number().int().min(1).max(2 ** 31 - 1).default(1000),
  message: z.string().max(65536),
});

/**
 * Outpost's own routes for comet (admin): the status the panel shows, and a test push as the
 * dashboard sends it (JSON fields), through goim's handlers so it behaves as goim's API does.
 */
export function adminRoutes(ctx: () => GoimContext, status: () => CometStatus): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/comet/status',
      auth: 'admin',
      error: restError,
      handler: () => ({ json: status() }),
    },
    {
      method: 'POST',
      path: '/api/v1/comet/push',
      auth: 'admin',
      error: restError,
      handler: async (req) => {
        const p = pushBody.safeParse(req.json ?? req.fields);
        if (!p.success) throw new HttpError(400, describeIssues(p.error));
        const { to, target, operation, message } = p.data;
        const c = ctx();
        const raw = Buffer.from(message);
        const op = [String(operation)];
        if (to === 'key') {
          const r = await pushKeys({ queryAll: { operation: op, keys: [target] }, raw }, c);
          return { json: { to, target, nodes: r.reached ?? 0 } };
        }
        const sep = target.indexOf('://');
        if (sep <= 0) throw new HttpError(400, `room must be type://id (e.g. live://1000), got ${JSON.stringify(target.slice(0, 80))}`);
        const r = await pushRoom({ queryAll: { operation: op, type: [target.slice(0, sep)], room: [target.slice(sep + 3)] }, raw }, c);
        if (r.json.code !== 0) throw new HttpError(400, r.json.message);
        return { json: { to, target, nodes: r.reached ?? 0 } };
      },
    },
  ];
}
