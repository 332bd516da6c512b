/**
 * Request bodies of the seed routes (issue 12's rules). Messages are written to follow the field
 * name that describeIssues puts in front, e.g. `step: must be an integer from 0 to 3600`.
 */
import { z } from '../sdk/index.ts';

/** The original cast with (int); a canonical digit string is taken as the integer it spells. */
const digits = (v: unknown) => (typeof v === 'string' && /^(0|[1-9]\d{0,15})$/.test(v) ? Number(v) : v);

/** A missing field says so; a present one says what it must be. */
const say = (message: string) => (iss: { input?: unknown }) => (iss.input === undefined ? `required, ${message.replace(/^must be /, '')}` : message);

export function intIn(min: number, max: number) {
  const message = `must be an integer from ${min} to ${max}`;
  return z.preprocess(digits, z.number({ error: say(message) }).int({ error: message }).min(min, { error: message }).max(max, { error: message }));
}

/** Counted in characters (code points), as the original's utf8mb4 varchar columns count them. */
export function text(min: number, max: number) {
  const message = min > 0 ? `must be a string of ${min} to ${max} characters` : `must be a string of at most ${max} characters`;
  return z.string({ error: say(message) }).refine((s) => {
    const n = [...s].length;
    return n >= min && n <= max && (min === 0 || s.trim() !== '');
  }, { error: message });
}

const httpUrl = text(1, 200).refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}, { error: 'must be an http:// or https:// URL of at most 200 characters' });

export const appCreateBody = z.object({
  appName: text(1, 100),
  linkUrl: httpUrl,
  /** Seconds between a failed attempt's end and the next attempt. */
  step: intIn(0, 3600).default(0),
  /** Attempts after the first; the original stored it and never read it. */
  retryTotal: intIn(0, 10).default(5),
  remark: text(0, 255).default(''),
});
export type AppCreateBody = z.infer<typeof appCreateBody>;

/** A task id: the integer /task/create answered (ids travel in query strings too). */
export const taskId = intIn(1, Number.MAX_SAFE_INTEGER);

export const taskCreateBody = z.object({
  /** Unique per application; a UUID when absent. Integers are taken as their decimal text. */
  taskNo: z.preprocess((v) => (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v), text(1, 128)).optional(),
  /** Presence only: the value is kept as the client wrote it (see json-raw.ts). */
  content: z.unknown().refine((v) => v !== undefined, { error: 'required: any JSON value, sent to the application as {"data": content}' }),
  /** Milliseconds the callback may take; the original's watchdog default was 60 s. */
  timeout: intIn(1, 3_600_000).default(60_000),
  name: text(0, 255).default(''),
  /** Parsed by runtime.ts, which knows the configured zone. */
  runtime: z.unknown().optional(),
});

export const cancelBody = z.object({ id: taskId });
export const detailQuery = z.object({ id: taskId });
export const publishBody = z.object({ task_id: taskId });
