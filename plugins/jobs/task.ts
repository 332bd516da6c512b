/**
 * The task record and its state transitions, as pure functions a queue can drive. Each transition
 * returns the new record and the effects the driver must carry out (schedule, unschedule, abort the
 * attempt in flight on its node, announce the end); invalid requests throw JobsError (code 1).
 */
import { JobsError } from './envelope.ts';
import { formatIso, formatLocal } from './runtime.ts';

/** Constant/Task.php: TASK_TODO, TASK_ING, TASK_SUCCESS, TASK_CANCEL, TASK_ERROR. */
export const STATUS = { pending: 0, running: 1, success: 2, cancelled: 3, failed: 4 } as const;
export type Status = (typeof STATUS)[keyof typeof STATUS];
export const STATUS_NAME: Record<Status, string> = { 0: 'pending', 1: 'running', 2: 'success', 3: 'cancelled', 4: 'failed' };

/** A node lost mid-attempt this many times in a row fails the task instead of moving it on forever. */
export const MAX_LOST_IN_A_ROW = 5;

export interface Attempt {
  n: number;
  /** The node that ran it. */
  node: string;
  startedAt: number;
  /** Null while in flight. */
  elapsedMs: number | null;
  statusCode: number | null;
  error: string | null;
  /** The node was lost before it reported: this attempt did not count against retryTotal. */
  lost?: true;
}

export interface Task {
  id: number;
  appKey: string;
  taskNo: string;
  name: string;
  /** JSON text, as the client sent it. */
  content: string;
  timeout: number;
  /** The runtime as given (resolved to ms). */
  runtime: number;
  /** Copied from the application at creation: later app changes do not alter scheduled tasks. */
  step: number;
  retryTotal: number;
  status: Status;
  attempts: Attempt[];
  /** When a pending task is next due; null otherwise. */
  nextRunAt: number | null;
  /** Attempts before this index belong to earlier runs (each /nsq/publish re-run has a fresh budget). */
  runFrom: number;
  /** The error a failed task ended with. */
  error: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export type Effect =
  | { kind: 'schedule'; at: number }
  | { kind: 'unschedule' }
  | { kind: 'abort'; node: string; n: number }
  /** The task reached 2, 3 or 4: emit jobs.task.finished. */
  | { kind: 'finished' };

export interface Transition {
  task: Task;
  effects: Effect[];
}

export interface Outcome {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  elapsedMs: number;
}

export interface NewTask {
  taskNo: string;
  name: string;
  content: string;
  timeout: number;
  runtime: number;
  runAt: number;
}

export function createTask(id: number, appKey: string, input: NewTask, policy: { step: number; retryTotal: number }, now: number): Transition {
  const task: Task = {
    id,
    appKey,
    taskNo: input.taskNo,
    name: input.name,
    content: input.content,
    timeout: input.timeout,
    runtime: input.runtime,
    step: policy.step,
    retryTotal: policy.retryTotal,
    status: STATUS.pending,
    attempts: [],
    nextRunAt: input.runAt,
    runFrom: 0,
    error: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  };
  return { task, effects: [{ kind: 'schedule', at: input.runAt }] };
}

/** A node takes the due task: the next attempt starts. */
export function startAttempt(task: Task, node: string, now: number): Transition & { attempt: Attempt } {
  if (task.status !== STATUS.pending) throw new JobsError(`task ${task.id} is ${STATUS_NAME[task.status]}, not pending: it cannot start`);
  const attempt: Attempt = { n: task.attempts.length + 1, node, startedAt: now, elapsedMs: null, statusCode: null, error: null };
  return { task: { ...task, status: STATUS.running, attempts: [...task.attempts, attempt], nextRunAt: null, updatedAt: now }, effects: [], attempt };
}

/**
 * A node reports how attempt n went. Reports are at least once, so a repeated one changes nothing. A
 * cancelled task stays cancelled whatever the receiver said. A report from an attempt already given up
 * as lost still counts if it succeeded: the receiver did get the callback.
 */
export function finishAttempt(task: Task, n: number, outcome: Outcome, now: number): Transition {
  const i = task.attempts.findIndex((a) => a.n === n);
  const prior = task.attempts[i];
  if (!prior || (prior.elapsedMs !== null && !prior.lost)) return { task, effects: [] };
  // A lost attempt that reports after all did reach the receiver: from now on it counts like any other.
  const { lost: _lost, ...reported } = prior;
  const attempts = task.attempts.map((a, j) => (j === i ? { ...reported, elapsedMs: outcome.elapsedMs, statusCode: outcome.statusCode, error: outcome.ok ? null : outcome.error } : a));
  const recorded: Task = { ...task, attempts, updatedAt: now };
  const current = i === task.attempts.length - 1 && task.status === STATUS.running;
  if (task.status !== STATUS.pending && task.status !== STATUS.running) return { task: recorded, effects: [] };
  if (outcome.ok) {
    const effects: Effect[] = [{ kind: 'unschedule' }, { kind: 'finished' }];
    // A late success of a lost attempt while its successor is in flight: that one is no longer needed.
    const inFlight = task.attempts.at(-1)!;
    if (!current && task.status === STATUS.running) effects.unshift({ kind: 'abort', node: inFlight.node, n: inFlight.n });
    return { task: { ...recorded, status: STATUS.success, nextRunAt: null, error: null, finishedAt: now }, effects };
  }
  if (!current) return { task: recorded, effects: [] };
  return afterFailure(recorded, outcome.error ?? 'failed', now);
}

/** The node running attempt n is gone (lease expired, link dropped): hand the task on at once. */
export function loseAttempt(task: Task, n: number, reason: string, now: number): Transition {
  const last = task.attempts.at(-1);
  if (task.status !== STATUS.running || !last || last.n !== n) {
    // Cancelled while running and then lost: close the attempt, the task stays cancelled.
    if (last && last.n === n && last.elapsedMs === null) return { task: { ...task, attempts: closeLost(task.attempts, reason, now), updatedAt: now }, effects: [] };
    return { task, effects: [] };
  }
  const attempts = closeLost(task.attempts, reason, now);
  let lostInARow = 0;
  for (let j = attempts.length - 1; j >= task.runFrom && attempts[j].lost; j--) lostInARow++;
  const t: Task = { ...task, attempts, updatedAt: now };
  if (lostInARow >= MAX_LOST_IN_A_ROW) return fail(t, `lost ${lostInARow} times in a row (last: ${reason})`, now);
  return { task: { ...t, status: STATUS.pending, nextRunAt: now }, effects: [{ kind: 'schedule', at: now }] };
}

function closeLost(attempts: Attempt[], reason: string, now: number): Attempt[] {
  return attempts.map((a, j) => (j === attempts.length - 1 ? { ...a, elapsedMs: now - a.startedAt, error: reason, lost: true as const } : a));
}

/** Total attempts per run = 1 + retryTotal; the next one `step` seconds after a failure ends (constant, as the source). */
function afterFailure(task: Task, error: string, now: number): Transition {
  const counted = task.attempts.slice(task.runFrom).filter((a) => !a.lost).length;
  if (counted >= 1 + task.retryTotal) return fail(task, error, now);
  const at = now + task.step * 1000;
  return { task: { ...task, status: STATUS.pending, nextRunAt: at }, effects: [{ kind: 'schedule', at }] };
}

function fail(task: Task, error: string, now: number): Transition {
  return { task: { ...task, status: STATUS.failed, nextRunAt: null, error, finishedAt: now }, effects: [{ kind: 'finished' }] };
}

/** Pending (first run or waiting for a retry): never runs. Running: aborted on its node and cancelled at once. */
export function cancelTask(task: Task, now: number): Transition {
  if (task.status === STATUS.pending) {
    return { task: { ...task, status: STATUS.cancelled, nextRunAt: null, finishedAt: now, updatedAt: now }, effects: [{ kind: 'unschedule' }, { kind: 'finished' }] };
  }
  if (task.status === STATUS.running) {
    const a = task.attempts.at(-1)!;
    return { task: { ...task, status: STATUS.cancelled, finishedAt: now, updatedAt: now }, effects: [{ kind: 'abort', node: a.node, n: a.n }, { kind: 'finished' }] };
  }
  throw new JobsError(`task ${task.id} already finished (${STATUS_NAME[task.status]}): nothing to cancel`);
}

/** /nsq/publish: a finished task (success, cancelled or failed) runs again at its runtime, now if past. */
export function rerunTask(task: Task, now: number): Transition {
  if (task.status === STATUS.pending || task.status === STATUS.running) {
    throw new JobsError(`task ${task.id} is ${STATUS_NAME[task.status]}: only a finished task can be published again`);
  }
  const at = Math.max(task.runtime, now);
  return { task: { ...task, status: STATUS.pending, nextRunAt: at, runFrom: task.attempts.length, error: null, finishedAt: null, updatedAt: now }, effects: [{ kind: 'schedule', at }] };
}

export interface TaskDetail {
  id: number;
  taskNo: string;
  name: string;
  status: Status;
  runtime: string;
  timeout: number;
  attempts: Array<{ n: number; node: string; startedAt: string; elapsedMs: number | null; statusCode: number | null; error: string | null }>;
  nextRunAt: string | null;
  error: string | null;
}

/**
 * data.task of /task/detail: the record only (the original returned a coroutine's stack and variables).
 * runtime in the original's `Y-m-d H:i:s`, the other times ISO 8601 with the zone's offset and ms.
 * nodeName maps node ids to the names operators know.
 */
export function taskDetail(task: Task, timezone: string, nodeName: (id: string) => string = (id) => id): TaskDetail {
  return {
    id: task.id,
    taskNo: task.taskNo,
    name: task.name,
    status: task.status,
    runtime: formatLocal(task.runtime, timezone),
    timeout: task.timeout,
    attempts: task.attempts.map((a) => ({ n: a.n, node: nodeName(a.node), startedAt: formatIso(a.startedAt, timezone), elapsedMs: a.elapsedMs, statusCode: a.statusCode, error: a.error })),
    nextRunAt: task.nextRunAt === null ? null : formatIso(task.nextRunAt, timezone),
    error: task.error,
  };
}

/**
 * The task a signed request may act on: it must exist and belong to the signing application. Both
 * failures give the same answer, so one application cannot probe another's task ids.
 */
export function ownTask(task: Task | undefined, id: number, appKey: string): Task {
  if (!task || task.appKey !== appKey) throw new JobsError(`no task ${id} for this application`);
  return task;
}
