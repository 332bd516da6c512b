import { defineController } from '../sdk/index.ts';
import { seedRoutes } from './api.ts';
import { listenCompat } from './compat-listener.ts';
import { Dispatcher } from './dispatcher.ts';
import { Jobs } from './jobs.ts';
import { jobsPanel } from './panel.ts';
import { restRoutes } from './rest.ts';
import { spec } from './spec.ts';
import { STATUS_NAME, type Status } from './task.ts';

const PRUNE_EVERY_MS = 60_000;

export default defineController(spec, (ctx) => {
  const j = new Jobs(ctx);
  const d = new Dispatcher(j);
  j.waitingReason = () => d.waiting;
  j.onRemoteTasks = (replaced) => d.remoteChanged(replaced);
  const prune = () => j.book.prune(Date.now() - ctx.config.keepFinishedHours * 3_600_000);

  return {
    async start() {
      await j.open();
      prune();
      ctx.metrics.gaugeFn('outpost_jobs_tasks', 'Tasks by state (pending, running, success, cancelled, failed).', () => Object.entries(j.book.counts).map(([s, n]) => [{ state: STATUS_NAME[Number(s) as Status] }, n]));
      ctx.metrics.gaugeFn('outpost_jobs_applications', 'Applications that may sign task requests.', () => j.apps.list().length);
      const seed = seedRoutes(j);
      ctx.routes.mount([...seed, ...restRoutes(j)]);
      const listen = ctx.config.listen;
      if (listen) {
        const l = await listenCompat(ctx, listen, seed);
        j.listening = { host: listen.host, port: l.port };
        ctx.log.info({ host: listen.host, port: l.port }, 'signed task routes also on node:http (app_key headers)');
      }
      d.setup();
      // Dispatch (and the reconcile of the queue with the book before it): on the lease holder only.
      ctx.singleton((term) => d.start(term));
      ctx.schedule.every(PRUNE_EVERY_MS, prune);
    },
    stop() {
      d.stop();
    },
    onReport: {
      outcomes: (meta, r) => d.onOutcomes(meta.nodeId, r.outcomes),
      started: (meta, r) => d.onStarted(meta.nodeId, r.boot),
    },
    onMessage: {
      ended: (nodeId, m) => d.onEnded(nodeId, m.attempts),
    },
    panel: jobsPanel(j, d),
  };
});
