import { readFile } from 'node:fs/promises';
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

/** Reads an optional JSON config file, applies overrides, validates; every failure names the file and field. */
export async function loadJsonConfig<S extends z.ZodType>(schema: S, file: string | undefined, overrides: Record<string, unknown>, what: string): Promise<z.infer<S>> {
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${what} ${file}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`${what} ${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  return parseOrThrow(schema, { ...raw, ...overrides }, `${what}${file ? ` ${file}` : ''}`);
}
