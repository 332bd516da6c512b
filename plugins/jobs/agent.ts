import { randomUUID } from 'node:crypto';
import { defineAgent } from '../sdk/index.ts';
import { performCallback } from './callback.ts';
import { spec, type OutcomeReport, type RunJob } from './spec.ts';

/** Outcomes per report at most; more wait for the next one. */
const BATCH = 1000;

/**
 * The node's side: performs the callbacks the controller hands it (callback.ts), each under its own
 * AbortController so a cancel cuts the request in flight, and reports how each went through the
 * durable outbox, batched: outcomes that end while one report is being written go in the next.
 */
export default defineAgent(spec, (ctx) => {
  /** This incarnation: the controller drops attempts a previous one was given (they will never report). */
  const boot = randomUUID();
  const running = new Map<string, AbortController>();
  let pending: OutcomeReport[] = [];
  let flushing = false;
  /** Attempts ended this turn, told to the controller at the end of it (one message). */
  let ended: Array<{ taskId: number; n: number }> = [];
  const callbacks = ctx.metrics.counter('outpost_jobs_node_callbacks_total', 'Callbacks this node performed, by outcome (success, failed, cancelled).');

  function start(job: RunJob): boolean {
    const key = `${job.taskId}:${job.n}`;
    // The same attempt twice (a repeated command): it runs once.
    if (running.has(key)) return false;
    const abort = new AbortController();
    running.set(key, abort);
    performCallback({ ...job, node: ctx.node.id, secretKey: job.secretKey.reveal() }, { signal: abort.signal })
      .then((r) => {
        // Cut short because the plugin stops: the next incarnation's `started` hands the task on.
        if (ctx.signal.aborted) return;
        callbacks.inc({ outcome: r.ok ? 'success' : abort.signal.aborted ? 'cancelled' : 'failed' });
        if (!ended.length) setImmediate(tellEnded);
        ended.push({ taskId: job.taskId, n: job.n });
        pending.push({ taskId: job.taskId, n: job.n, ok: r.ok, statusCode: r.statusCode, error: r.error, elapsedMs: r.elapsedMs, startedAt: r.startedAt });
        void flush();
      })
      .finally(() => running.delete(key));
    return true;
  }

  function tellEnded(): void {
    const attempts = ended;
    ended = [];
    if (!ctx.signal.aborted) ctx.send('ended', { attempts });
  }

  async function flush(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      while (pending.length && !ctx.signal.aborted) {
        const batch = pending.slice(0, BATCH);
        await ctx.report('outcomes', { boot, outcomes: batch });
        pending = pending.slice(batch.length);
      }
    } catch (err) {
      // The outbox could not take it (disk full): the outcomes stay here and go with a later try.
      ctx.log.error({ err: (err as Error).message, waiting: pending.length }, 'could not queue callback outcomes; retrying');
      if (!ctx.signal.aborted) ctx.schedule.after(1000, flush);
    } finally {
      flushing = false;
    }
  }

  return {
    async start() {
      // The plugin stops: every callback in flight is cut (one listener, not a combined signal per callback).
      ctx.signal.addEventListener('abort', () => {
        for (const c of running.values()) c.abort();
      });
      ctx.metrics.gaugeFn('outpost_jobs_node_callbacks_in_flight', 'Callbacks this node is performing now.', () => running.size);
      await ctx.report('started', { boot });
    },
    // The agent half reads nothing from the config: a pushed config changes nothing here.
    update() {},
    commands: {
      run({ jobs }) {
        let accepted = 0;
        for (const job of jobs) if (start(job)) accepted++;
        return { accepted, boot };
      },
      abort({ taskId, n }) {
        const c = running.get(`${taskId}:${n}`);
        c?.abort();
        return { aborted: c !== undefined };
      },
    },
  };
});
