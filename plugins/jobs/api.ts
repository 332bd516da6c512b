/**
 * Serendipity-Job's HTTP API (facts §2–§3, issue 12 §API): /application/create with the admin token,
 * the four task routes signed. A refused request changes nothing: its nonce is kept only once the
 * request is accepted, and written before the request's effect and the answer.
 */
import type { HttpRequest, HttpResult, Route } from '../sdk/index.ts';
import type { Application } from './application.ts';
import { JobsError, jobsError, ok } from './envelope.ts';
import type { Jobs } from './jobs.ts';
import type { NonceClaim } from './nonce-store.ts';
import { ownTask } from './task.ts';
import { parseAppCreate, parseCancel, parseDetailQuery, parsePublish, parseTaskCreate } from './validate.ts';

type Signed = (app: Application, claim: NonceClaim) => Promise<HttpResult>;

export function seedRoutes(j: Jobs): Route[] {
  async function signed(req: HttpRequest, handle: Signed): Promise<HttpResult> {
    const v = await j.verifier.verify(req.headers, req.ip);
    if (!v.ok) {
      j.counters.refused.inc({ status: String(v.status) });
      throw new JobsError(v.message, v.status);
    }
    try {
      return await handle(v.app, v.claim);
    } catch (err) {
      // Nothing happened: the client may send the same nonce again (a no-op once it was written).
      v.claim.release();
      throw err;
    }
  }

  const route = (method: 'GET' | 'POST', path: string, handle: (req: HttpRequest) => Promise<HttpResult>): Route => ({ method, path, auth: 'none', error: jobsError, handler: handle });

  return [
    {
      method: 'POST',
      path: '/application/create',
      // The original had no auth on it at all (facts §3).
      auth: 'admin',
      error: jobsError,
      async handler(req) {
        const { app, answer } = await j.apps.create(parseAppCreate(req.raw));
        j.ctx.log.info({ appKey: app.appKey, appName: app.appName }, 'application created');
        return ok(answer);
      },
    },
    route('POST', '/task/create', (req) =>
      signed(req, async (app, claim) => {
        const input = parseTaskCreate(req.raw, { timezone: j.cfg.timezone, now: Date.now() });
        const task = await j.createTask(app, input, claim);
        return ok({ taskId: task.id }, 'ok!');
      }),
    ),
    route('GET', '/task/detail', (req) =>
      signed(req, async (app, claim) => {
        const { id } = parseDetailQuery(Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, [v]])));
        const task = ownTask(j.book.get(id), id, app.appKey);
        await claim.commit();
        return ok({ task: j.view(task) });
      }),
    ),
    route('POST', '/task/cancel', (req) =>
      signed(req, async (app, claim) => {
        const { id } = parseCancel(req.raw);
        const task = await j.cancel(ownTask(j.book.get(id), id, app.appKey), () => claim.commit());
        return ok({ task: j.view(task) }, 'Killed');
      }),
    ),
    route('POST', '/nsq/publish', (req) =>
      signed(req, async (app, claim) => {
        const { taskId } = parsePublish(req.raw);
        const task = await j.rerun(ownTask(j.book.get(taskId), taskId, app.appKey), () => claim.commit());
        return ok({ task: j.view(task) });
      }),
    ),
  ];
}
