import { parseGoInt } from '../go/strconv.ts';

/**
 * gin v1.7's c.BindQuery for the struct shapes goim's handlers use: values come from the query only,
 * a slice only from repeated parameters (commas are not split), a scalar from the first value, an
 * empty int is 0; parse errors come first (the first field that fails, strconv's text), then
 * `binding:"required"` (int non-zero, string non-empty, slice present) for every field, joined as the
 * validator joins them.
 */
export type FieldType = 'int32' | 'int' | 'string' | 'strings' | 'int64s';

export interface FieldSpec {
  /** The query parameter (the `form` tag). */
  form: string;
  /** The Go field name, as validation messages name it. */
  go: string;
  type: FieldType;
  required?: boolean;
}

type ValueOf<T extends FieldType> = T extends 'int32' | 'int' ? number : T extends 'string' ? string : string[] | undefined;
export type Bound<S extends Record<string, FieldSpec>> = { [K in keyof S]: ValueOf<S[K]['type']> };

export type BindResult<S extends Record<string, FieldSpec>> = { ok: true; v: Bound<S> } | { ok: false; message: string };

export function bindQuery<S extends Record<string, FieldSpec>>(query: Record<string, string[]>, spec: S): BindResult<S> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec)) {
    const values = Object.hasOwn(query, f.form) ? query[f.form] : undefined;
    switch (f.type) {
      case 'string':
        out[name] = values?.[0] ?? '';
        break;
      case 'strings':
        out[name] = values ? [...values] : undefined;
        break;
      case 'int32':
      case 'int': {
        const r = parseGoInt(values?.[0] || '0', f.type === 'int32' ? 32 : 64);
        if (!r.ok) return { ok: false, message: r.error };
        out[name] = Number(r.value);
        break;
      }
      case 'int64s': {
        if (!values) break;
        const list: string[] = [];
        for (const v of values) {
          const r = parseGoInt(v || '0', 64);
          if (!r.ok) return { ok: false, message: r.error };
          list.push(r.value.toString());
        }
        out[name] = list;
        break;
      }
    }
  }
  const failed = Object.entries(spec).filter(([name, f]) => f.required && isZero(out[name]));
  if (failed.length > 0) return { ok: false, message: failed.map(([, f]) => `Key: '.${f.go}' Error:Field validation for '${f.go}' failed on the 'required' tag`).join('\n') };
  return { ok: true, v: out as Bound<S> };
}

function isZero(v: unknown): boolean {
  return v === undefined || v === 0 || v === '';
}
