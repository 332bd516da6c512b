/** Keys whose values are secrets in any config or record we show. */
const SECRET_KEY = /secret|token|passw|passwd|api_?key|access_?key|private|credential|dsn/i;
export const REDACTED = '***';

export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v !== null && typeof v !== 'object' ? REDACTED : redactSecrets(v);
    }
    return out as T;
  }
  return value;
}

/** Lets a client PUT back a config it got redacted: "***" keeps the stored value at that place. */
export function restoreRedacted(incoming: unknown, previous: unknown): unknown {
  if (incoming === REDACTED) return previous;
  if (Array.isArray(incoming)) return incoming.map((v, i) => restoreRedacted(v, Array.isArray(previous) ? previous[i] : undefined));
  if (incoming && typeof incoming === 'object') {
    const prev = (previous && typeof previous === 'object' ? previous : {}) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(incoming).map(([k, v]) => [k, restoreRedacted(v, prev[k])]));
  }
  return incoming;
}
