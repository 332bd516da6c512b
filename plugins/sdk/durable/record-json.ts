/**
 * The one place records read back from a durable log are decoded. JSON.parse defines a `__proto__`
 * key as an ordinary own property (it never sets the prototype), so such keys in records stay plain
 * data as long as readers keep the parsed objects rather than copying them with Object.assign.
 * Kept apart so that the stores' stricter decoding can take its place in one edit.
 */
export function parseRecordJson(line: string): unknown {
  return JSON.parse(line);
}
