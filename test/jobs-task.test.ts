import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobsError } from '../plugins/jobs/envelope.ts';
import { MAX_LOST_IN_A_ROW, STATUS, cancelTask, createTask, finishAttempt, loseAttempt, ownTask, rerunTask, startAttempt, taskDetail, type Outcome, type Task } from '../plugins/jobs/task.ts';

const T0 = Date.UTC(2024, 0, 1, 4, 0, 0);
const input = { taskNo: 'no-1', name: 'n', content: '{"a":1}', timeout: 1000, runtime: T0, runAt: T0 };
const failed = (error = 'HTTP 500', elapsedMs = 40): Outcome => ({ ok: false, statusCode: 500, error, elapsedMs });
const succeeded: Outcome = { ok: true, statusCode: 200, error: null, elapsedMs: 12 };

/** Runs a task the way a queue would, on a fake clock: start when due, every attempt fails after 40 ms. */
function runToEnd(task: Task, attemptMs = 40): { task: Task; starts: number[]; finished: number } {
  const starts: number[] = [];
  let finished = 0;
  let now = task.nextRunAt!;
  while (task.status === STATUS.pending) {
    now = Math.max(now, task.nextRunAt!);
    starts.push(now);
    const s = startAttempt(task, 'node-a', now);
    now += attemptMs;
    const r = finishAttempt(s.task, s.attempt.n, failed(`HTTP 500 at ${starts.length}`, attemptMs), now);
    finished += r.effects.filter((e) => e.kind === 'finished').length;
    for (const e of r.effects) if (e.kind === 'schedule') assert.equal(e.at, r.task.nextRunAt);
    task = r.task;
  }
  return { task, starts, finished };
}

test('a new task is pending and scheduled at its runtime', () => {
  const { task, effects } = createTask(7, 'app', input, { step: 5, retryTotal: 2 }, T0 - 10_000);
  assert.equal(task.status, STATUS.pending);
  assert.equal(task.nextRunAt, T0);
  assert.deepEqual(effects, [{ kind: 'schedule', at: T0 }]);
});

test('success on the first attempt: status 2, announced once, duplicate reports change nothing', () => {
  const t = createTask(1, 'app', input, { step: 5, retryTotal: 2 }, T0).task;
  const s = startAttempt(t, 'node-a', T0 + 3);
  assert.equal(s.task.status, STATUS.running);
  assert.equal(s.attempt.n, 1);
  const done = finishAttempt(s.task, 1, succeeded, T0 + 15);
  assert.equal(done.task.status, STATUS.success);
  assert.deepEqual(done.effects, [{ kind: 'unschedule' }, { kind: 'finished' }]);
  assert.deepEqual(done.task.attempts, [{ n: 1, node: 'node-a', startedAt: T0 + 3, elapsedMs: 12, statusCode: 200, error: null }]);
  const again = finishAttempt(done.task, 1, failed(), T0 + 20);
  assert.equal(again.task, done.task);
  assert.deepEqual(again.effects, []);
});

test('retries: 1 + retryTotal attempts, each step seconds after the previous ended; then 4 with the last error', () => {
  const { task, starts, finished } = runToEnd(createTask(1, 'app', input, { step: 5, retryTotal: 3 }, T0).task);
  assert.deepEqual(starts.map((s) => s - T0), [0, 5040, 10_080, 15_120]);
  assert.equal(task.status, STATUS.failed);
  assert.equal(task.error, 'HTTP 500 at 4');
  assert.equal(task.attempts.length, 4);
  assert.equal(task.nextRunAt, null);
  assert.equal(finished, 1);
});

test('retryTotal 0: one attempt only; step 0: retries at once', () => {
  assert.equal(runToEnd(createTask(1, 'app', input, { step: 9, retryTotal: 0 }, T0).task).starts.length, 1);
  const r = runToEnd(createTask(1, 'app', input, { step: 0, retryTotal: 2 }, T0).task);
  assert.deepEqual(r.starts.map((s) => s - T0), [0, 40, 80]);
});

test('cancel: pending never runs, running is aborted on its node and stays cancelled, finished is refused', () => {
  const pending = createTask(1, 'app', input, { step: 5, retryTotal: 2 }, T0).task;
  const c = cancelTask(pending, T0 + 1);
  assert.equal(c.task.status, STATUS.cancelled);
  assert.deepEqual(c.effects, [{ kind: 'unschedule' }, { kind: 'finished' }]);
  assert.throws(() => startAttempt(c.task, 'node-a', T0 + 2), /task 1 is cancelled, not pending/);

  const running = startAttempt(pending, 'node-b', T0).task;
  const cr = cancelTask(running, T0 + 5);
  assert.equal(cr.task.status, STATUS.cancelled);
  assert.deepEqual(cr.effects, [{ kind: 'abort', node: 'node-b', n: 1 }, { kind: 'finished' }]);
  // The receiver answers success after the cancel: recorded on the attempt, the task stays cancelled.
  const late = finishAttempt(cr.task, 1, succeeded, T0 + 30);
  assert.equal(late.task.status, STATUS.cancelled);
  assert.equal(late.task.attempts[0].statusCode, 200);
  assert.deepEqual(late.effects, []);

  for (const t of [late.task, finishAttempt(running, 1, succeeded, T0 + 9).task]) {
    assert.throws(() => cancelTask(t, T0 + 40), (e: unknown) => e instanceof JobsError && /task 1 already finished \((cancelled|success)\): nothing to cancel/.test(e.message));
  }
});

test('cancel while waiting for a retry: never runs again', () => {
  const t = createTask(1, 'app', input, { step: 60, retryTotal: 5 }, T0).task;
  const s = startAttempt(t, 'node-a', T0);
  const waiting = finishAttempt(s.task, 1, failed(), T0 + 40).task;
  assert.equal(waiting.status, STATUS.pending);
  assert.equal(waiting.nextRunAt, T0 + 60_040);
  const c = cancelTask(waiting, T0 + 100);
  assert.equal(c.task.status, STATUS.cancelled);
  assert.equal(c.task.nextRunAt, null);
});

test('a lost node hands the task on at once without spending a retry; a late success still counts', () => {
  const t = createTask(1, 'app', input, { step: 5, retryTotal: 0 }, T0).task;
  const first = startAttempt(t, 'node-a', T0).task;
  const lost = loseAttempt(first, 1, 'node node-a lost', T0 + 3000);
  assert.equal(lost.task.status, STATUS.pending);
  assert.deepEqual(lost.effects, [{ kind: 'schedule', at: T0 + 3000 }]);
  assert.equal(lost.task.attempts[0].error, 'node node-a lost');
  // retryTotal 0, yet the attempt on node-b runs: the lost one did not count.
  const second = startAttempt(lost.task, 'node-b', T0 + 3001);
  assert.equal(second.attempt.n, 2);
  // node-a comes back and reports that attempt 1 did succeed: done, and node-b's attempt is aborted.
  const late = finishAttempt(second.task, 1, succeeded, T0 + 3002);
  assert.equal(late.task.status, STATUS.success);
  assert.deepEqual(late.effects, [{ kind: 'abort', node: 'node-b', n: 2 }, { kind: 'unschedule' }, { kind: 'finished' }]);
  assert.equal(late.task.attempts[0].error, null);
  assert.equal('lost' in late.task.attempts[0], false);
  // Attempt 2's own report afterwards is recorded and changes nothing else.
  const after = finishAttempt(late.task, 2, failed('aborted'), T0 + 3003);
  assert.equal(after.task.status, STATUS.success);
  assert.deepEqual(after.effects, []);
});

test(`lost ${MAX_LOST_IN_A_ROW} times in a row: the task fails instead of moving on forever`, () => {
  let t = createTask(1, 'app', input, { step: 5, retryTotal: 10 }, T0).task;
  for (let i = 1; i <= MAX_LOST_IN_A_ROW; i++) t = loseAttempt(startAttempt(t, `node-${i}`, T0 + i).task, i, `node-${i} lost`, T0 + i + 1).task;
  assert.equal(t.status, STATUS.failed);
  assert.match(t.error!, /lost 5 times in a row \(last: node-5 lost\)/);
});

test('a stale loss (attempt already superseded) changes nothing', () => {
  const t = createTask(1, 'app', input, { step: 0, retryTotal: 3 }, T0).task;
  const a1 = startAttempt(t, 'a', T0);
  const t2 = finishAttempt(a1.task, 1, failed(), T0 + 1).task;
  const a2 = startAttempt(t2, 'b', T0 + 2).task;
  const r = loseAttempt(a2, 1, 'node a lost', T0 + 3);
  assert.equal(r.task, a2);
});

test('re-run (nsq/publish): finished tasks go back to pending at runtime (now if past) with a fresh budget', () => {
  const future = { ...input, runtime: T0 + 3_600_000, runAt: T0 + 3_600_000 };
  const f = runToEnd(createTask(1, 'app', future, { step: 1, retryTotal: 1 }, T0).task).task;
  assert.equal(f.status, STATUS.failed);
  const again = rerunTask(f, T0 + 60_000);
  assert.equal(again.task.status, STATUS.pending);
  assert.equal(again.task.nextRunAt, T0 + 3_600_000, 'its runtime is still ahead');
  assert.equal(again.task.error, null);
  const r2 = runToEnd(again.task);
  assert.equal(r2.starts.length, 2, 'a fresh 1 + retryTotal');
  assert.deepEqual(r2.task.attempts.map((a) => a.n), [1, 2, 3, 4], 'attempt numbers keep counting up (receivers dedupe on them)');
  const past = rerunTask(r2.task, T0 + 7_200_000);
  assert.equal(past.task.nextRunAt, T0 + 7_200_000, 'past runtime: now');
  assert.throws(() => rerunTask(past.task, T0), /task 1 is pending: only a finished task can be published again/);
  assert.throws(() => rerunTask(startAttempt(past.task, 'a', T0).task, T0), /is running/);
  assert.equal(rerunTask(cancelTask(past.task, T0).task, T0).task.status, STATUS.pending);
});

test('detail: the record only, times in the zone, never content or app secrets', () => {
  const t = createTask(81, 'app', { ...input, runtime: Date.UTC(2021, 6, 27, 9, 30, 30), runAt: T0 }, { step: 10, retryTotal: 1 }, T0).task;
  const s = startAttempt(t, 'n1', T0 + 5);
  const d = taskDetail(finishAttempt(s.task, 1, failed('HTTP 502'), T0 + 45).task, 'Asia/Shanghai', (id) => `edge-${id}`);
  assert.deepEqual(d, {
    id: 81,
    taskNo: 'no-1',
    name: 'n',
    status: 0,
    runtime: '2021-07-27 17:30:30',
    timeout: 1000,
    attempts: [{ n: 1, node: 'edge-n1', startedAt: '2024-01-01T12:00:00.005+08:00', elapsedMs: 40, statusCode: 500, error: 'HTTP 502' }],
    nextRunAt: '2024-01-01T12:00:10.045+08:00',
    error: null,
  });
});

test('ownership: another application gets the same answer as for an unknown id', () => {
  const t = createTask(5, 'app-a', input, { step: 0, retryTotal: 0 }, T0).task;
  assert.equal(ownTask(t, 5, 'app-a'), t);
  assert.throws(() => ownTask(t, 5, 'app-b'), (e: unknown) => e instanceof JobsError && e.message === 'no task 5 for this application');
  assert.throws(() => ownTask(undefined, 6, 'app-a'), /no task 6 for this application/);
});
