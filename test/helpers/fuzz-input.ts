/**
 * fast-check generators for hostile HTTP input: path parameters, query strings and bodies (JSON of
 * any shape, broken JSON, forms, raw bytes, oversized), built around the field names the APIs read
 * so that fuzzed bodies reach the validation of real fields.
 */
import fc from 'fast-check';

/** Field names the APIs read (REST, iplive, Websoft9), plus names every object has. */
export const FIELDS = ['token', 'name', 'labels', 'address', 'local', 'ttl', 'uses', 'url', 'secret', 'events', 'description', 'message', 'state', 'limit', 'subscription', 'since', 'group', 'app_name', 'group_id', 'record_ids', 'ips', 'protocol', 'port', 'path', 'domain', 'cookies', 'http_code', 'interval', 'timeout', 'retry_count', 'level', 'node_ips', 'callback_url', 'record_id', 'ip', 'node_ip', 'passwd', 'timestamp', 'data', 'appName', 'node', 'purge', 'config', 'constructor', 'toString'];

/** The values a handler most often forgets: wrong types, empty, huge. */
const HOSTILE: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, '', ' ', [], {}, [null], { '': null }, ['a', 1], 'x'.repeat(5000)];

export const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  // Lone surrogates: not valid UTF-16; in URLs they become U+FFFD, in JSON bodies they go as escapes.
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((n) => String.fromCharCode(n)), maxLength: 4 }),
  fc.constantFrom('', ' ', '\u0000', '\u202e', '💥'.repeat(40), 'a'.repeat(5000), '-1', '0', '1e309', 'NaN', 'true', '[]', '{}', '__proto__', '../../etc/passwd', '%00', '%E0%A4%A', '1:2:3', 'opj_x.y'),
);
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
export const key = fc.oneof({ arbitrary: fc.constantFrom(...FIELDS), weight: 4 }, { arbitrary: fc.string({ maxLength: 12 }), weight: 1 });
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    { arbitrary: fc.constantFrom(...HOSTILE), weight: 3 },
    { arbitrary: scalar, weight: 2 },
    { arbitrary: fc.array(tie('value'), { maxLength: 4 }), weight: 1 },
    { arbitrary: fc.dictionary(key, tie('value'), { maxKeys: 5 }), weight: 1 },
  ),
}));
/** Several known fields at once, each with a fuzzed value. */
const fields = fc.subarray(FIELDS, { minLength: 1, maxLength: 12 }).chain((names) => fc.tuple(...names.map((n) => value.map((v): [string, unknown] => [n, v]))));

export interface Body {
  raw?: string | Uint8Array;
  type?: string;
  what: string;
}

export const json = (v: unknown, what: string): Body => ({ raw: JSON.stringify(v) ?? 'null', type: 'application/json', what });

/** What a fuzzed request carries: nothing, JSON of any shape, broken JSON, a form, raw bytes, or more than maxBody. */
export function bodies(maxBody: number): fc.Arbitrary<Body> {
  return fc.oneof(
    fc.constant({ what: 'none' }),
    { arbitrary: fields.map((pairs) => json(Object.fromEntries(pairs), 'JSON fields')), weight: 6 },
    fc.constant({ raw: '', type: 'application/json', what: 'empty JSON' }),
    value.map((v) => json(v, 'JSON value')),
    fc.tuple(fc.dictionary(key, value, { maxKeys: 6 }), fc.nat()).map(([o, cut]) => {
      const full = JSON.stringify(o);
      return { raw: full.slice(0, cut % Math.max(1, full.length)) + (cut % 3 === 0 ? ',' : ''), type: 'application/json', what: 'truncated JSON' };
    }),
    fc.string().map((t) => ({ raw: `{${t}`, type: 'application/json', what: 'malformed JSON' })),
    fc.array(fc.tuple(key, text), { maxLength: 8 }).map((pairs) => ({ raw: new URLSearchParams(pairs).toString(), type: 'application/x-www-form-urlencoded', what: 'form' })),
    fc.string().map((t) => ({ raw: t, type: 'application/x-www-form-urlencoded', what: 'raw form text' })),
    fc.uint8Array({ maxLength: 64 }).map((b) => ({ raw: b, type: 'application/json', what: 'raw bytes as JSON' })),
    fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain').map((type) => ({ raw: `{"pad":"${'x'.repeat(maxBody + 1024)}"}`, type, what: 'oversized' })),
  );
}

/** A path parameter: any string, a dot segment, a lone percent, or a very long one. */
export const param = fc.oneof(text, fc.constantFrom('x', '.', '..', '%', ' ', 'a'.repeat(300)));
export const query = fc.array(fc.tuple(key, text), { maxLength: 6 });

/** Lone surrogates become U+FFFD (URLs cannot carry them; bodies still do). */
export const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

/** The route's path with each ":param" replaced by the next value, percent-encoded. */
export function fillPath(path: string, params: string[]): string {
  let i = 0;
  return path.replace(/:[A-Za-z_]+/g, () => encodeURIComponent(wellFormed(params[i++] ?? 'x')) || 'x');
}
