/**
 * Bodies of calls between controllers: a JSON value whose Buffers cross as raw bytes (plugin messages
 * and peer calls may carry them), the same way the agent link's binary frames do (runtime/link-codec.ts):
 *
 *   u32 JSON length · JSON `[value, paths, lengths]` · the buffers, back to back
 *
 * where value has null in place of each buffer, paths say where each goes and lengths how long it is.
 * No buffers: paths and lengths are empty, and the body is the JSON after its length.
 */
import { extractBuffers, LinkCodecError, place, type Path } from '../link-codec.ts';
import { ForbiddenKeyError, parseWireJson } from '../../plugins/sdk/json.ts';

/** Bodies larger than this are refused both ways: a command's data (4 MiB) and its envelope fit. */
export const PEER_MAX_BODY = 8 * 1024 * 1024;

export function encodePeerBody(value: unknown, what: string): Buffer {
  const buffers: Uint8Array[] = [];
  const paths: Path[] = [];
  const v = extractBuffers(value === undefined ? null : value, [], buffers, paths, 0, what);
  const json = Buffer.from(JSON.stringify([v, paths, buffers.map((b) => b.byteLength)]));
  let total = 4 + json.length;
  for (const b of buffers) total += b.byteLength;
  if (total > PEER_MAX_BODY) throw new RangeError(`${what} is ${total} bytes; calls between controllers carry at most ${PEER_MAX_BODY}`);
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32BE(json.length, 0);
  let at = 4 + json.copy(out, 4);
  for (const b of buffers) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

/** Throws LinkCodecError saying what is wrong; buffers in the result are views into body. */
export function decodePeerBody(body: Buffer): unknown {
  if (body.length < 4) throw new LinkCodecError('peer body is shorter than its header');
  const jsonBytes = body.readUInt32BE(0);
  if (4 + jsonBytes > body.length) throw new LinkCodecError('peer body ends inside its JSON part');
  let parsed: unknown;
  try {
    parsed = parseWireJson(body.toString('utf8', 4, 4 + jsonBytes));
  } catch (err) {
    throw new LinkCodecError(err instanceof ForbiddenKeyError ? `peer body: ${err.message}` : 'peer body JSON part is malformed');
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || !Array.isArray(parsed[1]) || !Array.isArray(parsed[2]) || parsed[1].length !== parsed[2].length) {
    throw new LinkCodecError('peer body JSON part must be [value, paths, lengths] with one length per path');
  }
  const [value, paths, lengths] = parsed as [unknown, unknown[], unknown[]];
  const holder = { root: value };
  let at = 4 + jsonBytes;
  for (let i = 0; i < paths.length; i++) {
    const n = lengths[i];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || at + n > body.length) throw new LinkCodecError('peer body buffer lengths do not match its size');
    place(holder, paths[i], body.subarray(at, (at += n)));
  }
  if (at !== body.length) throw new LinkCodecError(`peer body is ${body.length} bytes but its header accounts for ${at}`);
  return holder.root;
}
