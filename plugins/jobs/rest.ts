/**
 * The admin's view of jobs (native REST envelope, admin token or dashboard session): applications
 * without secrets, tasks, and the panel's actions (create an application, cancel, re-run).
 */
import { HttpError, restError, type HttpRequest, type Route } from '../sdk/index.ts';
import { applicationView } from './application.ts';
import type { Jobs } from './jobs.ts';
import { STATUS_NAME, type Status, type Task } from './task.ts';
import { parseAppCreate } from './validate.ts';

const STATES = Object.values(STATUS_NAME);

function taskOf(j: Jobs, req: HttpRequest): Task {
  const id = Number(req.params.id);
  const task = Number.isSafeInteger(id) ? j.book.get(id) : undefined;
  if (!task) throw new HttpError(404, `no task ${req.params.id.slice(0, 32)}`);
  return task;
}

/** A task as the admin sees it: the detail view plus its application. */
export function adminView(j: Jobs, t: Task) {
  return { ...j.view(t), appKey: t.appKey, appName: j.apps.get(t.appKey)?.appName ?? '', state: STATUS_NAME[t.status] };
}

export function restRoutes(j: Jobs): Route[] {
  const admin = (method: Route['method'], path: string, handler: Route['handler']): Route => ({ method, path, auth: 'admin', error: restError, handler });
  return [
    admin('GET', '/api/v1/jobs/status', () => ({
      json: {
        counts: Object.fromEntries(Object.entries(j.book.counts).map(([s, n]) => [STATUS_NAME[Number(s) as Status], n])),
        waiting: j.waitingReason() ?? null,
        listen: j.listening ?? null,
      },
    })),
    admin('GET', '/api/v1/jobs/apps', () => ({ json: { apps: j.apps.list().map(applicationView) } })),
    admin('POST', '/api/v1/jobs/apps', async (req) => {
      const { app, answer } = await j.apps.create(parseAppCreate(req.raw));
      j.ctx.log.info({ appKey: app.appKey, appName: app.appName }, 'application created');
      // The secret is in this answer only: the dashboard shows it once, in that browser tab.
      return { status: 201, json: { app: applicationView(app), secretKey: answer.secretKey } };
    }),
    admin('GET', '/api/v1/jobs/tasks', (req) => {
      const state = req.query.state;
      if (state !== undefined && !STATES.includes(state)) throw new HttpError(400, `state: must be one of ${STATES.join(', ')}`);
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'limit: must be an integer from 1 to 1000');
      const app = req.query.app;
      const tasks = j.book.recent(limit, (t) => (state === undefined || STATUS_NAME[t.status as Status] === state) && (app === undefined || t.appKey === app));
      return { json: { tasks: tasks.map((t) => adminView(j, t)) } };
    }),
    admin('GET', '/api/v1/jobs/tasks/:id', (req) => ({ json: { task: adminView(j, taskOf(j, req)) } })),
    admin('POST', '/api/v1/jobs/tasks/:id/cancel', async (req) => ({ json: { task: adminView(j, await j.cancel(taskOf(j, req))) } })),
    admin('POST', '/api/v1/jobs/tasks/:id/rerun', async (req) => ({ json: { task: adminView(j, await j.rerun(taskOf(j, req))) } })),
  ];
}
