/**
 * JSON from outside (HTTP bodies, link messages) and from disk. JSON.parse itself keeps `__proto__`
 * an ordinary own key, but any later copy by assignment turns it into the prototype setter; so input
 * from the wire holding that key is refused, and data read back from disk gets objects without a
 * prototype, where it stays an ordinary key whatever the code does with it.
 */

/** Thrown for a `__proto__` key: the message says which problem, like JSON.parse's own errors. */
export class ForbiddenKeyError extends SyntaxError {}

const refuseProto = (key: string, value: unknown): unknown => {
  if (key === '__proto__') throw new ForbiddenKeyError('the key "__proto__" is not allowed');
  return value;
};

/** JSON.parse that refuses a `__proto__` key at any depth (also written with \u escapes). */
export function parseWireJson(text: string): unknown {
  // The reviver costs a walk of every value: only texts that could hold the key pay it.
  if (!text.includes('__proto__') && !text.includes('\\u')) return JSON.parse(text);
  return JSON.parse(text, refuseProto);
}

const noPrototype = (_key: string, value: unknown): unknown => {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) Object.setPrototypeOf(value, null);
  return value;
};

/** JSON.parse whose objects have no prototype: every key, `__proto__` included, is an ordinary entry. */
export function parseStoredJson(text: string): unknown {
  return JSON.parse(text, noPrototype);
}

/** The same shape for data made in code (defaults): a deep copy whose objects have no prototype. */
export function withoutPrototypes<T>(value: T): T {
  return parseStoredJson(JSON.stringify(value)) as T;
}
