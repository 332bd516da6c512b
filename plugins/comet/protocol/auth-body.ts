import { parseGoInt } from '../go/strconv.ts';

/**
 * The op-7 body, decoded the way goim's logic Connect does (encoding/json into
 * `{mid int64, key, room_id, platform string, accepts []int32}`): unknown fields ignored, names
 * matched case-insensitively, null leaves a field empty, any wrong type fails the whole auth.
 * `token` is Outpost's addition for the optional JWT check.
 */
export interface AuthBody {
  /** int64 as canonical decimal text: JSON numbers past 2^53 must not lose digits. */
  mid: string;
  key: string;
  roomId: string;
  platform: string;
  accepts: number[];
  token?: string;
}

const INT32_ARRAY = /^\[\s*(?:-?\d+\s*(?:,\s*-?\d+\s*)*)?\]$/;
const STRING_FIELDS = { key: 'key', room_id: 'roomId', platform: 'platform', token: 'token' } as const;

export function parseAuthBody(body: Uint8Array): AuthBody | { error: string } {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { error: `auth body is not JSON: ${(err as Error).message}` };
  }
  const out: AuthBody = { mid: '0', key: '', roomId: '', platform: '', accepts: [] };
  if (doc === null) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) return { error: 'auth body is not a JSON object' };
  for (const [name, raw] of topLevelMembers(text)) {
    const field = name.toLowerCase();
    if (raw === 'null') continue;
    if (field === 'mid') {
      const r = parseGoInt(raw, 64);
      if (!r.ok) return { error: `mid must be an int64, got ${raw.slice(0, 40)}` };
      out.mid = r.value.toString();
    } else if (field === 'accepts') {
      if (!INT32_ARRAY.test(raw)) return { error: 'accepts must be an array of int32' };
      const ops = JSON.parse(raw) as number[];
      if (ops.some((op) => op < -(2 ** 31) || op >= 2 ** 31)) return { error: 'accepts must be an array of int32' };
      out.accepts = ops;
    } else if (Object.hasOwn(STRING_FIELDS, field)) {
      const v = JSON.parse(raw) as unknown;
      if (typeof v !== 'string') return { error: `${field} must be a string` };
      out[STRING_FIELDS[field as keyof typeof STRING_FIELDS]] = v;
    }
  }
  return out;
}

/**
 * The members of a JSON object as [name, raw value text], in document order (a later duplicate wins
 * when applied in order, as with encoding/json). Only called on text JSON.parse accepted.
 */
export function topLevelMembers(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = text.indexOf('{') + 1;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  for (;;) {
    ws();
    if (text[i] === '}') return out;
    if (text[i] === ',') i++;
    ws();
    const keyStart = i;
    i = skipString(text, i);
    const name = JSON.parse(text.slice(keyStart, i)) as string;
    ws();
    i++; // ':'
    ws();
    const valueStart = i;
    i = skipValue(text, i);
    out.push([name, text.slice(valueStart, i)]);
  }
}

/** Index after the string starting at i (on its opening quote). */
function skipString(text: string, i: number): number {
  for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
  return i + 1;
}

function skipValue(text: string, i: number): number {
  if (text[i] === '"') return skipString(text, i);
  if (text[i] === '{' || text[i] === '[') {
    let depth = 0;
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '"') i = skipString(text, i) - 1;
      else if (c === '{' || c === '[') depth++;
      else if ((c === '}' || c === ']') && --depth === 0) return i + 1;
    }
    return i;
  }
  while (i < text.length && !',}] \t\n\r'.includes(text[i])) i++;
  return i;
}
