/**
 * The typed boundary between a plugin's halves (and between plugins): reports, command args and
 * results, messages and events are checked against the spec's zod schemas where they arrive.
 * Agents and controllers upgrade apart, so a field the receiver's schema does not know is kept
 * (handlers get the parsed value with the original's unknown fields put back), while a value of the
 * wrong type is refused with an error naming the field, and counted.
 */
import type { z } from 'zod';
import type { Counter, MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { describeIssues } from '../plugins/sdk/validate.ts';

export type BoundaryKind = 'report' | 'command' | 'result' | 'message' | 'event';

export class BoundaryError extends Error {
  constructor(
    readonly plugin: string,
    readonly kind: BoundaryKind,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * `parsed` with the keys only `original` has put back, at every level where both are plain objects
 * (or arrays of the same length): zod strips keys its schema does not declare, and a newer peer's
 * field must survive an older receiver. Values the schema declares stay as parsed (defaults,
 * coercions); class instances (Buffer, Date) are taken as parsed.
 */
export function keepUnknown(original: unknown, parsed: unknown): unknown {
  if (Array.isArray(original) && Array.isArray(parsed)) {
    return original.length === parsed.length ? parsed.map((v, i) => keepUnknown(original[i], v)) : parsed;
  }
  if (!isPlainObject(original) || !isPlainObject(parsed)) return parsed;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(original)) if (!Object.hasOwn(parsed, k)) out[k] = v;
  for (const [k, v] of Object.entries(parsed)) out[k] = Object.hasOwn(original, k) ? keepUnknown(original[k], v) : v;
  return out;
}

export class Boundary {
  constructor(private readonly refused: Counter) {}

  /**
   * The value as the handler gets it, or a BoundaryError (counted) naming what is wrong.
   * A type the spec does not declare is refused too, listing the ones it does.
   */
  check<T = unknown>(plugin: string, kind: BoundaryKind, type: string, schemas: Record<string, z.ZodType> | undefined, value: unknown): T {
    const schema = schemas && Object.hasOwn(schemas, type) ? schemas[type] : undefined;
    if (!schema) {
      const known = Object.keys(schemas ?? {});
      // Only declared types become label values: a peer sending junk type names must not mint series.
      throw this.refuse(plugin, kind, type, '(undeclared)', `${plugin} declares no ${kind} "${type.slice(0, 60)}"${known.length ? ` (it declares: ${known.join(', ')})` : ''}`);
    }
    return this.parse<T>(plugin, kind, type, schema, value);
  }

  /** Like check() with the schema given (a listener's own schema for another plugin's event). */
  parse<T = unknown>(plugin: string, kind: BoundaryKind, type: string, schema: z.ZodType, value: unknown): T {
    const r = schema.safeParse(value);
    // Event names carry their namespace already; the others are named plugin.type.
    if (!r.success) throw this.refuse(plugin, kind, type, type, `${kind} ${kind === 'event' ? type : `${plugin}.${type}`} refused: ${describeIssues(r.error)}`);
    return keepUnknown(value, r.data) as T;
  }

  private refuse(plugin: string, kind: BoundaryKind, type: string, label: string, message: string): BoundaryError {
    this.refused.inc({ plugin, kind, type: label });
    return new BoundaryError(plugin, kind, type, message);
  }
}

/** A host's boundary, counting refusals in its registry (each host, and the test harness, has one). */
export function hostBoundary(metrics: MetricsRegistry): Boundary {
  return new Boundary(metrics.counter('outpost_plugin_boundary_refused_total', 'Reports, commands, results, messages and events refused at a plugin boundary (wrong type), by plugin, kind and type.'));
}
