/**
 * Sizes of what the halves exchange. The link refuses a message over 1 MiB, and keys and rooms are
 * client-chosen strings (up to an auth body's 4096 bytes each, more once JSON escapes them), so
 * presence batches, snapshots and room counts are cut by their bytes, never by their item counts.
 */

/** How many bytes one item adds to a message on the wire (JSON, UTF-8). */
export function wireBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v)) + 1;
}

/** A message under the link's 1 MiB bound with room to spare, whatever the keys and rooms hold. */
export const PART_BYTES = 256 * 1024;

/** Splits items into runs of at most `budget` wire bytes (one item alone may exceed it: it travels alone). */
export function chunkByBytes<T>(items: readonly T[], budget = PART_BYTES, size: (item: T) => number = wireBytes): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const b = size(item);
    if (cur.length > 0 && bytes + b > budget) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += b;
  }
  if (cur.length > 0 || out.length === 0) out.push(cur);
  return out;
}
