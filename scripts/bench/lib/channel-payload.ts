/** What both sides of the link-channels bench share (no side effects: both processes import it). */

export type PayloadKind = 'binary' | 'json';

/** Milliseconds on CLOCK_MONOTONIC: the same clock in every process of this machine. */
export const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

/** One payload as the bench sends it: raw bytes (a binary frame) or base64 in JSON (a text frame). */
export function payload(kind: PayloadKind, bytes: Buffer): Buffer | string {
  return kind === 'binary' ? bytes : bytes.toString('base64');
}
