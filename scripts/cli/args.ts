/** A mistake in how the CLI was called: printed as one line, exit code 2. */
export class UsageError extends Error {}

export function labels(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (v ?? '').split(',').filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i < 1) throw new UsageError(`--labels takes k=v pairs separated by commas, got "${pair}"`);
    out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return out;
}

export function wholeNumber(v: string, flag: string, min = 0): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number${min > 0 ? ` of at least ${min}` : ''}, got "${v}"`);
  return n;
}

/** Comma-separated list, blanks dropped. */
export function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}
