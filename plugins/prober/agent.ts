import { defineAgent, LoopDelay, type Store } from '../sdk/index.ts';
import { NOT_PROBED, UP, type CheckResult, type CheckSpec, type RecordSpec } from './schema.ts';
import { spec } from './spec.ts';
import { offsetMs, roundStart, spreadWindowMs } from './rounds.ts';
import { notProbed, runCheck } from './checks/run.ts';
import { DueHeap } from './queue.ts';

interface Assignment {
  hash: string;
  groups: CheckSpec[];
}

interface Job {
  due: number;
  round: number;
  key: string;
  rec: RecordSpec;
}

interface RoundBatch {
  pending: number;
  results: CheckResult[];
}

const LATENESS_KEPT = 50_000;

/**
 * The probing side: keeps the controller's assignment (on disk, so a restart keeps probing),
 * plans each group's checks at its round boundary spread over the round, runs them with bounded
 * concurrency and reports each round's results in batches through the durable outbox.
 */
export default defineAgent(spec, (ctx) => {
  const cfg = ctx.config;
  let store: Store<Assignment>;
  const groups = new Map<string, CheckSpec>();
  const planned = new Map<string, number>();
  const heap = new DueHeap<Job>();
  /** Due jobs waiting for a concurrency slot: a FIFO read from `readyAt`, compacted when drained. */
  let ready: Job[] = [];
  let readyAt = 0;
  const batches = new Map<number, RoundBatch>();
  const lateness: number[] = [];
  let latenessAt = 0;
  let running = 0;
  let completed = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  // Tells lateness caused by a busy process or host apart from lateness caused by the planner.
  const loopDelay = new LoopDelay(10);
  const checksRun = ctx.metrics.counter('outpost_prober_checks_total', 'Checks run by this agent, by outcome (up, failed, or error: the node could not run it).');
  // Detected once at agent start: without ping every icmp check answers this at once, not after its timeout.
  const noIcmp = ctx.capabilities.icmp?.available === false ? `ping is not installed on node ${ctx.node.name}` : undefined;

  function load(a: Assignment): void {
    groups.clear();
    for (const g of a.groups) groups.set(g.key, g);
    for (const k of [...planned.keys()]) if (!groups.has(k)) planned.delete(k);
  }

  function plan(): void {
    const now = Date.now();
    for (const g of groups.values()) {
      // Plan one second ahead so the first checks of a round are on the heap before it starts.
      const r = roundStart(now + 1000, g.interval);
      const last = planned.get(g.key);
      if (last !== undefined && last >= r) continue;
      planned.set(g.key, r);
      const window = spreadWindowMs(g.interval, g.timeout, g.retryCount, cfg.spreadFraction);
      const end = r + g.interval * 1000;
      const budget = g.timeout * 1000 * (g.retryCount + 1);
      let batch = batches.get(r);
      for (const rec of g.records) {
        const key = `${g.key}\u0000${rec.id}`;
        let due = r + offsetMs(key, window);
        // Joined mid-round: checks whose time has passed are spread over what is left of the round
        // (never a burst of thousands at once), or wait for the next round if none can finish in it.
        if (due < now) {
          const left = end - budget - now;
          if (left <= 0) continue;
          due = now + offsetMs(key, Math.min(left, Math.max(window, 1)));
        }
        if (!batch) batches.set(r, (batch = { pending: 0, results: [] }));
        batch.pending++;
        heap.push({ due, round: r, key: g.key, rec });
      }
    }
    arm();
  }

  function arm(): void {
    if (stopped) return;
    clearTimeout(timer);
    const next = heap.peek();
    if (!next) return;
    timer = setTimeout(fire, Math.max(0, next.due - Date.now()));
  }

  function fire(): void {
    const now = Date.now();
    while (heap.size && heap.peek()!.due <= now) ready.push(heap.pop()!);
    drain();
    arm();
  }

  function drain(): void {
    while (readyAt < ready.length && running < cfg.maxConcurrent && !stopped) {
      const job = ready[readyAt++];
      const spec = groups.get(job.key);
      // The group was withdrawn or changed since planning: its result would describe nothing current.
      if (!spec || !spec.records.some((r) => r.id === job.rec.id && r.ip === job.rec.ip)) {
        settle(job.round, undefined);
        continue;
      }
      if (spec.protocol === 'icmp' && noIcmp) {
        checksRun.inc({ outcome: 'error' });
        settle(job.round, notProbed(spec, job.rec, job.due, noIcmp));
        continue;
      }
      running++;
      const startedAt = Date.now();
      recordLateness(startedAt - job.due);
      runCheck(spec, job.rec, job.due, job.round + spec.interval * 1000)
        .then(
          (res) => {
            checksRun.inc({ outcome: res.status === UP ? 'up' : res.status === NOT_PROBED ? 'error' : 'failed' });
            settle(job.round, res);
          },
          (err) => {
            ctx.log.warn({ group: job.key, err: (err as Error).message }, 'check failed to run');
            settle(job.round, undefined);
          },
        )
        .finally(() => {
          running--;
          completed++;
          drain();
        });
    }
    if (readyAt === ready.length) {
      ready = [];
      readyAt = 0;
    }
  }

  function recordLateness(ms: number): void {
    if (lateness.length < LATENESS_KEPT) lateness.push(ms);
    else lateness[latenessAt++ % LATENESS_KEPT] = ms;
  }

  function settle(round: number, res: CheckResult | undefined): void {
    const b = batches.get(round);
    if (!b) return;
    b.pending--;
    if (res) b.results.push(res);
    if (b.results.length >= cfg.batchSize || b.pending === 0) {
      const results = b.results.splice(0);
      if (b.pending === 0) batches.delete(round);
      if (results.length) ctx.report('results', { round, results }).catch((err) => ctx.log.error({ err: (err as Error).message }, 'could not queue results'));
    }
  }

  function percentile(p: number): number | null {
    if (!lateness.length) return null;
    const s = [...lateness].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  }

  return {
    async start() {
      store = await ctx.openStore<Assignment>('assignment', { hash: '', groups: [] });
      load(store.data);
      loopDelay.enable();
      ctx.schedule.every(250, plan, { immediate: true });
    },
    stop() {
      stopped = true;
      loopDelay.disable();
      clearTimeout(timer);
      heap.clear();
      ready = [];
      readyAt = 0;
    },
    commands: {
      async assign(a) {
        await store.update((d) => {
          d.hash = a.hash;
          d.groups = a.groups;
        });
        load(store.data);
        plan();
        return { hash: store.data.hash, groups: groups.size };
      },
      status: () => ({
        hash: store.data.hash,
        groups: groups.size,
        records: [...groups.values()].reduce((n, g) => n + g.records.length, 0),
        queued: heap.size + ready.length - readyAt,
        running,
        completed,
        lateness: { samples: lateness.length, p50: percentile(50), p99: percentile(99), max: lateness.length ? lateness.reduce((a, b) => Math.max(a, b), 0) : null },
        eventLoopDelay: { p99: loopDelay.percentileMs(99), max: loopDelay.maxMs() },
      }),
      'reset-stats': () => {
        lateness.length = 0;
        latenessAt = 0;
        loopDelay.reset();
        completed = 0;
        return { ok: true as const };
      },
    },
  };
});
