/**
 * The one secret rule of the code base: a secret is a value of type Secret, and every way a value
 * leaves the process as text (JSON, logs, util.inspect, template strings, panels) shows it as `***`.
 * Nothing guesses from key names: a schema says which fields are secrets (`secret()`), and code that
 * needs the value asks for it (`reveal()`), which makes each use visible in review.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { z } from 'zod';

/** How a secret is shown anywhere outside the process; a config PUT that sends it back means "keep". */
export const REDACTED = '***';

export class Secret {
  readonly #value: string;
  readonly #shown: string;

  /** `shown` is what the world sees instead (default `***`); a URL shows its host and path (secretUrl). */
  constructor(value: string, shown = REDACTED) {
    if (typeof value !== 'string') throw new TypeError('a Secret wraps a string');
    this.#value = value;
    this.#shown = shown;
  }

  /** The secret itself, for the one place that signs, compares or sends it. */
  reveal(): string {
    return this.#value;
  }

  /**
   * Whether a presented value is this secret, in constant time: digests are compared, so neither the
   * length nor the first differing byte shows in the timing. An empty secret matches nothing.
   */
  matches(presented: unknown): boolean {
    if (typeof presented !== 'string' || this.#value === '') return false;
    const a = createHash('sha256').update(presented, 'utf8').digest();
    const b = createHash('sha256').update(this.#value, 'utf8').digest();
    return timingSafeEqual(a, b);
  }

  toJSON(): string {
    return this.#shown;
  }

  toString(): string {
    return this.#shown;
  }

  [Symbol.toPrimitive](): string {
    return this.#shown;
  }

  [inspect.custom](): string {
    return this.#shown;
  }
}

/**
 * A URL that may carry credentials in its user info (`user:pass@`) or its query (`?token=`): shown
 * with both masked, every query value included (no guessing which parameter names are secret).
 */
export function secretUrl(raw: string): Secret {
  let shown = '(invalid url)';
  try {
    const u = new URL(raw);
    if (u.username || u.password) {
      u.username = REDACTED;
      u.password = '';
    }
    for (const k of new Set(u.searchParams.keys())) u.searchParams.set(k, REDACTED);
    shown = u.toString();
  } catch {
    // shown stays the placeholder: an unparsable string could be anything
  }
  return new Secret(raw, shown);
}

/** Every Secret in a parsed value (a config, a provider's settings), e.g. to scrub text of them. */
export function secretsIn(value: unknown): Secret[] {
  if (value instanceof Secret) return [value];
  if (Array.isArray(value)) return value.flatMap(secretsIn);
  if (isRecord(value)) return Object.values(value).flatMap(secretsIn);
  return [];
}

/**
 * Text built from outside answers (a container's log, a cloud API's error) may quote a secret this
 * code knows: every occurrence, raw or percent-encoded (as it sits in a URL or a string-to-sign),
 * becomes `***`.
 */
export function withoutSecrets(text: string, secrets: Iterable<Secret | string>): string {
  let out = text;
  for (const s of secrets) {
    const v = s instanceof Secret ? s.reveal() : s;
    if (!v) continue;
    for (const form of new Set([v, encodeURIComponent(v), encodeURIComponent(encodeURIComponent(v))])) out = out.split(form).join(REDACTED);
  }
  return out;
}

/** The value a field holds, revealed when it is a Secret: for code that takes either. */
export function revealed(v: Secret | string): string;
export function revealed(v: Secret | string | undefined): string | undefined;
export function revealed(v: Secret | string | undefined): string | undefined {
  return v instanceof Secret ? v.reveal() : v;
}

// Marks secret() schemas for the walkers below: the transform's identity survives zod's clones
// (describe, meta, optional wrappers keep the pipe's parts), where a WeakSet of schemas would not.
const toSecret = (v: string): Secret => new Secret(v);

/**
 * A config field that holds a secret: parses a string (checked by `rules`, default non-empty) into
 * a Secret; a Secret passes through, so a parsed config parses again to itself. `"***"` is refused
 * here: on a PUT, keepStoredSecrets() has already put the stored value in its place.
 */
export function secret(rules: z.ZodType<string, string> = z.string().min(1, 'must not be empty')) {
  const text = z
    .string()
    .refine((v) => v !== REDACTED, `"${REDACTED}" stands for a stored secret, and none is stored here`)
    .pipe(rules);
  // Not a union with z.instanceof(Secret): a union's failure hides the rule's own message.
  return z.preprocess((v) => (v instanceof Secret ? v.reveal() : v), text).transform(toSecret);
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;

function isSecretSchema(def: Def): boolean {
  return def.type === 'pipe' && defOf(def.out)?.type === 'transform' && defOf(def.out)?.transform === toSecret;
}

/**
 * Where secret() fields sit in values of this schema, as a tree: `true` at a secret, an object of
 * child trees under object keys, `'*'` for every key of a record or item of an array. Unions merge
 * their options' trees (a field secret in any option is treated as secret).
 */
type SecretTree = true | { [key: string]: SecretTree };

function treeOf(schema: unknown, seen = new Set<unknown>()): SecretTree | undefined {
  const def = defOf(schema);
  if (!def || seen.has(schema)) return undefined;
  if (isSecretSchema(def)) return true;
  seen.add(schema);
  try {
    switch (def.type) {
      case 'optional': case 'nullable': case 'default': case 'prefault': case 'catch': case 'readonly': case 'nonoptional':
        return treeOf(def.innerType, seen);
      case 'pipe':
        return merge(treeOf(def.in, seen), treeOf(def.out, seen));
      case 'lazy':
        return treeOf((def.getter as () => unknown)(), seen);
      case 'object': {
        const out: Record<string, SecretTree> = {};
        for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
          const t = treeOf(v, seen);
          if (t) out[k] = t;
        }
        const rest = def.catchall ? treeOf(def.catchall, seen) : undefined;
        if (rest) out['*'] = rest;
        return Object.keys(out).length ? out : undefined;
      }
      case 'record': {
        const t = treeOf(def.valueType, seen);
        return t ? { '*': t } : undefined;
      }
      case 'array': {
        const t = treeOf(def.element, seen);
        return t ? { '*': t } : undefined;
      }
      case 'union':
        return (def.options as unknown[]).reduce<SecretTree | undefined>((acc, o) => merge(acc, treeOf(o, seen)), undefined);
      case 'intersection':
        return merge(treeOf(def.left, seen), treeOf(def.right, seen));
      default:
        return undefined;
    }
  } finally {
    seen.delete(schema);
  }
}

function merge(a: SecretTree | undefined, b: SecretTree | undefined): SecretTree | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a === true || b === true) return true;
  const out: Record<string, SecretTree> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = merge(out[k], v)!;
  return out;
}

const trees = new WeakMap<object, SecretTree | null>();
function secretTree(schema: z.ZodType): SecretTree | undefined {
  let t = trees.get(schema);
  if (t === undefined) {
    t = treeOf(schema) ?? null;
    trees.set(schema, t);
  }
  return t ?? undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function childTree(tree: Record<string, SecretTree>, key: string): SecretTree | undefined {
  return merge(Object.hasOwn(tree, key) ? tree[key] : undefined, tree['*']);
}

/** Maps every value at a secret place (and only there) through f, copying the rest. */
function mapSecrets(tree: SecretTree | undefined, value: unknown, f: (v: unknown, path: string[]) => unknown, path: string[]): unknown {
  if (!tree || value === undefined) return value;
  if (tree === true) return f(value, path);
  if (Array.isArray(value)) return value.map((v, i) => mapSecrets(childTree(tree, String(i)), v, f, [...path, String(i)]));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = mapSecrets(childTree(tree, k), v, f, [...path, k]);
    return out;
  }
  return value;
}

/**
 * A raw (unparsed) config as a read shows it: the value at every secret() field replaced by `***`,
 * everything else as stored (no defaults added). Works on configs that do not parse, too.
 */
export function redactRaw(schema: z.ZodType, raw: unknown): unknown {
  return mapSecrets(secretTree(schema), raw, (v) => (v === null ? v : REDACTED), []);
}

/** Thrown when a PUT sends `***` for a secret that has no stored value; the message names the field. */
export class NoStoredSecret extends Error {}

/**
 * The config a PUT means: where it sends `***` at a secret() field, the stored value at the same place
 * is kept. `***` anywhere else is an ordinary value.
 */
export function keepStoredSecrets(schema: z.ZodType, incoming: unknown, stored: unknown): unknown {
  return mapSecrets(secretTree(schema), incoming, (v, path) => {
    if (v !== REDACTED) return v;
    const kept = path.reduce<unknown>((o, k) => (isRecord(o) || Array.isArray(o) ? (o as Record<string, unknown>)[k] : undefined), stored);
    if (typeof kept !== 'string' || kept === REDACTED) throw new NoStoredSecret(`${path.join('.')}: "${REDACTED}" keeps the stored secret, and none is stored`);
    return kept;
  }, []);
}

/**
 * For data with no schema at all (the config of a plugin this host does not know): every scalar is
 * shown as `***`, since nothing says which of them are secrets.
 */
export function redactAll(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactAll);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactAll(v)]));
  return value === null || value === undefined ? value : REDACTED;
}
