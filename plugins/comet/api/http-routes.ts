import type { HttpResult, Route, RouteAuth } from '../../sdk/index.ts';
import type { GoimContext } from './context.ts';
import { goimError } from './envelope.ts';
import { goimRoutes } from './routes.ts';

/**
 * The largest message a push may carry: the body travels to each node in one link message (at most
 * 1 MiB with its keys), and goim's clients read it in one frame.
 */
export const MAX_PUSH_BODY = 1024 * 1024 - 64 * 1024;

export type PushKind = 'keys' | 'mids' | 'room' | 'all';

/**
 * goim's routes as the controller mounts them: the body is the raw message (never decoded as form or
 * JSON), repeated query parameters as gin binds them, goim's envelope for everything the host refuses.
 * `open()` is read per request, so a config pushed live changes the auth without a remount.
 */
export function goimHttpRoutes(ctx: () => GoimContext, open: () => boolean, pushed: (kind: PushKind) => void): Route[] {
  return goimRoutes.map((r) => {
    const kind = /^\/goim\/push\/(keys|mids|room|all)$/.exec(r.path)?.[1] as PushKind | undefined;
    return {
      method: r.method,
      path: r.path,
      get auth(): RouteAuth {
        return open() ? 'none' : 'admin';
      },
      rawBody: true,
      error: goimError,
      handler: async (req): Promise<HttpResult> => {
        if (kind && req.raw.length > MAX_PUSH_BODY) return goimError(413, `message too large: ${req.raw.length} bytes, at most ${MAX_PUSH_BODY}`);
        const res = await r.handler({ queryAll: req.queryAll, raw: req.raw }, ctx());
        if (kind && res.json.code === 0) pushed(kind);
        return { status: res.status, json: res.json };
      },
    };
  });
}
