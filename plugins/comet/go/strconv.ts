/**
 * Go's strconv.ParseInt (base 10) with its exact error texts: goim's HTTP API answers them verbatim
 * (gin binds query ints with it) and its comet parses sub/unsub bodies with it.
 */
export type ParsedInt = { ok: true; value: bigint } | { ok: false; error: string };

const RANGE: Record<32 | 64, [bigint, bigint]> = {
  32: [-(2n ** 31n), 2n ** 31n - 1n],
  64: [-(2n ** 63n), 2n ** 63n - 1n],
};

const DECIMAL = /^[+-]?[0-9]+$/;

export function parseGoInt(s: string, bits: 32 | 64): ParsedInt {
  if (!DECIMAL.test(s)) return { ok: false, error: `strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax` };
  const value = BigInt(s);
  const [min, max] = RANGE[bits];
  if (value < min || value > max) return { ok: false, error: `strconv.ParseInt: parsing ${goQuote(s)}: value out of range` };
  return { ok: true, value };
}

/** goim's pkg/strings.SplitInt32s: "" is no ops; one bad element fails the whole list. */
export function splitInt32s(s: string, sep = ','): number[] | undefined {
  if (s === '') return [];
  const out: number[] = [];
  for (const part of s.split(sep)) {
    const r = parseGoInt(part, 32);
    if (!r.ok) return undefined;
    out.push(Number(r.value));
  }
  return out;
}

const ESCAPES: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '"': '\\"', '\\': '\\\\' };

/** strconv.Quote, close enough for error messages: control characters escaped the way Go writes them. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ESCAPES[ch]) out += ESCAPES[ch];
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}
