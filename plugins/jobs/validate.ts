/**
 * Turns the raw bytes and query of a seed request into a typed command, or throws JobsError with a
 * message that names the field. Written against the v2 request shapes (`raw` body bytes and
 * `queryAll` repeated query values).
 */
import { randomUUID } from 'node:crypto';
import { describeIssues, parseWireJson, type z } from '../sdk/index.ts';
import { JobsError } from './envelope.ts';
import { rawMember } from './json-raw.ts';
import { RuntimeError, parseRuntime } from './runtime.ts';
import { appCreateBody, cancelBody, detailQuery, publishBody, taskCreateBody, type AppCreateBody } from './schema.ts';

export interface ParsedBody {
  fields: Record<string, unknown>;
  text: string;
}

/** The body as a JSON object. An empty body is an empty object: every field then reports itself missing. */
export function jsonBody(raw: Buffer | string | undefined): ParsedBody {
  const text = (typeof raw === 'string' ? raw : raw?.toString('utf8')) ?? '';
  if (text.trim() === '') return { fields: {}, text: '{}' };
  let value: unknown;
  try {
    value = parseWireJson(text);
  } catch (err) {
    throw new JobsError(`malformed JSON body: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new JobsError('body must be a JSON object');
  return { fields: value as Record<string, unknown>, text };
}

/** JSON null means "not given" (PHP clients send it for optional fields); content keeps its null. */
function withoutNulls(fields: Record<string, unknown>, keep: string[] = []): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== null || keep.includes(k)));
}

function check<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new JobsError(describeIssues(r.error));
  return r.data;
}

export function parseAppCreate(raw: Buffer | string | undefined): AppCreateBody {
  return check(appCreateBody, withoutNulls(jsonBody(raw).fields));
}

export interface TaskCreate {
  taskNo: string;
  /** The content member exactly as sent (JSON text). */
  content: string;
  timeout: number;
  name: string;
  /** When the task is due, ms since epoch: the given runtime, or now when absent or past. */
  runAt: number;
  /** The runtime as given, resolved to ms; now when absent. Kept for the detail view. */
  runtime: number;
}

export function parseTaskCreate(raw: Buffer | string | undefined, opts: { timezone: string; now: number }): TaskCreate {
  const body = jsonBody(raw);
  const f = check(taskCreateBody, withoutNulls(body.fields, ['content']));
  let runtime: number | undefined;
  try {
    runtime = parseRuntime(f.runtime, opts.timezone);
  } catch (err) {
    if (err instanceof RuntimeError) throw new JobsError(`runtime: ${err.message}`);
    throw err;
  }
  const at = runtime ?? opts.now;
  return { taskNo: f.taskNo ?? randomUUID(), content: rawMember(body.text, 'content')!, timeout: f.timeout, name: f.name, runtime: at, runAt: Math.max(at, opts.now) };
}

/** GET /task/detail?id= (the original's coroutine_id and service_id are accepted and ignored). */
export function parseDetailQuery(queryAll: Record<string, string[]>): { id: number } {
  const id = queryAll.id?.[0];
  if (id === undefined || id === '') throw new JobsError('id: required, the taskId /task/create answered');
  return check(detailQuery, { id });
}

export function parseCancel(raw: Buffer | string | undefined): { id: number } {
  return check(cancelBody, withoutNulls(jsonBody(raw).fields));
}

export function parsePublish(raw: Buffer | string | undefined): { taskId: number } {
  return { taskId: check(publishBody, withoutNulls(jsonBody(raw).fields)).task_id };
}
