import type { z } from 'zod';

/** Turns a zod failure into one line that names each bad field, e.g. `link.hbInterval: expected number`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new Error(`invalid ${what}: ${describeIssues(r.error)}`);
  return r.data;
}
