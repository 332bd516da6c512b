import { parseStoredJson } from '../json.ts';

/**
 * The one place records read back from a durable log are decoded: like every store, with objects
 * that have no prototype, so a `__proto__` key in a record stays an ordinary entry whatever the code
 * reading it does with it (copies by assignment included).
 */
export function parseRecordJson(line: string): unknown {
  return parseStoredJson(line);
}
