/**
 * Task `runtime` in the forms clients send (facts §3): `Y-m-d H:i:s` in the configured time zone
 * (the original ran in Asia/Shanghai), ISO 8601 with an offset, `@<unix seconds>`, or Unix seconds as a
 * JSON number (the document types runtime as int). Zone arithmetic uses Intl only.
 */
const LOCAL = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/;
const ISO_OFFSET = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;
const AT_UNIX = /^@(\d{1,11})$/;
/** Year 9999 at the latest: the date must print back as Y-m-d H:i:s. */
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

export class RuntimeError extends Error {}

/** Milliseconds since epoch, or undefined when no runtime was given (meaning now). */
export function parseRuntime(value: unknown, timezone: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) throw new RuntimeError('a number must be whole Unix seconds');
    ms = value * 1000;
  } else if (typeof value === 'string') {
    ms = parseText(value.trim(), timezone);
  } else {
    throw new RuntimeError('must be a string like "2021-07-27 17:30:30" or Unix seconds');
  }
  if (ms > MAX_MS) throw new RuntimeError(`${JSON.stringify(value)} is after the year 9999${typeof value === 'number' && value > 1e11 ? ' (milliseconds? send seconds)' : ''}`);
  return ms;
}

function parseText(text: string, timezone: string): number {
  const at = AT_UNIX.exec(text);
  if (at) return Number(at[1]) * 1000;
  const local = LOCAL.exec(text);
  if (local) {
    const [y, mo, d, h, mi, s] = local.slice(1).map(Number);
    checkFields(text, y, mo, d, h, mi, s);
    return zonedToUtc(y, mo, d, h, mi, s, timezone);
  }
  const iso = ISO_OFFSET.exec(text);
  if (iso) {
    const [y, mo, d, h, mi] = iso.slice(1, 6).map(Number);
    checkFields(text, y, mo, d, h, mi, Number(iso[6] ?? 0));
    const zone = iso[8].toUpperCase() === 'Z' ? 'Z' : iso[8].replace(/^([+-]\d{2}):?(\d{2})$/, '$1:$2');
    const ms = Date.parse(text.slice(0, text.length - iso[8].length) + zone);
    if (Number.isNaN(ms)) throw new RuntimeError(`"${text.slice(0, 64)}" is not a valid date`);
    return ms;
  }
  throw new RuntimeError(`"${text.slice(0, 64)}" is not "Y-m-d H:i:s" (${timezone}), ISO 8601 with an offset, or "@<unix seconds>"`);
}

function checkFields(text: string, y: number, mo: number, d: number, h: number, mi: number, s: number): void {
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || s > 59) throw new RuntimeError(`"${text.slice(0, 64)}" is not a valid date`);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(timezone, f);
  }
  return f;
}

/** Wall-clock fields of an instant in a zone, as Intl tells them (slow: a formatToParts each). */
function intlWallClock(ms: number, timezone: string): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const p = Object.fromEntries(formatter(timezone).formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { y: Number(p.year), mo: Number(p.month), d: Number(p.day), h: Number(p.hour), mi: Number(p.minute), s: Number(p.second) };
}

/**
 * Offsets by zone and minute: a burst of tasks finishing together formats hundreds of times in the
 * same minute. Zones change offset on whole minutes, so one minute has one offset. Bounded.
 */
const offsets = new Map<string, number>();
const MAX_OFFSETS = 10_000;

/** The zone's offset from UTC at an instant, in ms (east positive). */
export function zoneOffsetMs(ms: number, timezone: string): number {
  const key = `${timezone}|${Math.floor(ms / 60_000)}`;
  let off = offsets.get(key);
  if (off === undefined) {
    const w = intlWallClock(ms, timezone);
    off = Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
    if (offsets.size >= MAX_OFFSETS) offsets.clear();
    offsets.set(key, off);
  }
  return off;
}

/** Wall-clock fields of an instant in a zone. */
function wallClock(ms: number, timezone: string): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const d = new Date(Math.floor(ms / 1000) * 1000 + zoneOffsetMs(ms, timezone));
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() };
}

/**
 * The instant a wall-clock time names in a zone. Where a DST change makes it ambiguous, the earlier
 * instant; where it skips the time, the offset before the change applies (02:30 in a spring-forward
 * gap becomes 03:30), as PHP does.
 */
export function zonedToUtc(y: number, mo: number, d: number, h: number, mi: number, s: number, timezone: string): number {
  const asUtc = Date.UTC(y, mo - 1, d, h, mi, s);
  const candidates = [...new Set([zoneOffsetMs(asUtc - 86_400_000, timezone), zoneOffsetMs(asUtc, timezone), zoneOffsetMs(asUtc + 86_400_000, timezone)])]
    .map((off) => asUtc - off)
    .filter((t) => zoneOffsetMs(t, timezone) === asUtc - t)
    .sort((a, b) => a - b);
  return candidates[0] ?? asUtc - zoneOffsetMs(asUtc - 86_400_000, timezone);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `Y-m-d H:i:s` in the zone, the original's runtime format. */
export function formatLocal(ms: number, timezone: string): string {
  const w = wallClock(ms, timezone);
  return `${pad(w.y, 4)}-${pad(w.mo)}-${pad(w.d)} ${pad(w.h)}:${pad(w.mi)}:${pad(w.s)}`;
}

/** ISO 8601 with milliseconds and the zone's offset, e.g. `2021-07-27T17:30:30.123+08:00`. */
export function formatIso(ms: number, timezone: string): string {
  const off = zoneOffsetMs(ms, timezone) / 60_000;
  const sign = off < 0 ? '-' : '+';
  return `${formatLocal(ms, timezone).replace(' ', 'T')}.${pad(((ms % 1000) + 1000) % 1000, 3)}${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** Whether Intl knows the zone (config validation). */
export function isTimeZone(timezone: string): boolean {
  try {
    formatter(timezone);
    return true;
  } catch {
    return false;
  }
}
