/**
 * Wire form of best-effort plugin messages on the agent link (docs/api.md, "Message frames").
 *
 * A message without Buffers is a JSON text frame `{t:'msg', plugin, type, msg}` like every other link
 * message. A message holding Buffers (anywhere in its value) is one binary frame, so the bytes cross
 * as they are, never as base64 or JSON arrays of numbers:
 *
 *   u8 version (1) · u8 kind (1 = message) · u8 plugin length · u8 type length · u32 JSON length ·
 *   u16 buffer count · u32 length of each buffer · plugin · type · JSON · the buffers, back to back
 *
 * (big-endian). The JSON part is `[value, paths]`: the message with null where each buffer was, and
 * the path (keys and indexes) of each buffer in order. Paths, not in-band markers, so no value a plugin
 * sends can be mistaken for a buffer.
 */
import { LINK_LIMITS } from './link.ts';
import { ForbiddenKeyError, parseWireJson } from '../plugins/sdk/json.ts';

export const BINARY_VERSION = 1;
export const BINARY_KIND_MESSAGE = 1;
/** Deeper values are refused: the walk that finds buffers must end (cycles) and stay off the stack limit. */
export const MESSAGE_MAX_DEPTH = 64;

const FIXED_HEADER = 10;

export interface ChannelMessage {
  plugin: string;
  type: string;
  msg: unknown;
}

/** A message encoded once, written as is to every link it goes to. */
export interface EncodedFrame {
  /** UTF-8 JSON for a text frame, or the binary frame: bytes either way, so a broadcast converts nothing per link. */
  data: Buffer;
  binary: boolean;
  /** Size on the wire, for the high-water mark and the queue bound. */
  bytes: number;
  plugin: string;
}

/** A frame that breaks the format: the receiver closes the link with this message as the reason. */
export class LinkCodecError extends Error {}

export type Path = Array<string | number>;

/** Encodes a message; throws a RangeError naming the bound when it could never cross the link. */
export function encodeMessage(plugin: string, type: string, msg: unknown): EncodedFrame {
  const pluginBytes = Buffer.byteLength(plugin);
  const typeBytes = Buffer.byteLength(type);
  if (pluginBytes > LINK_LIMITS.names || typeBytes > LINK_LIMITS.names) throw new RangeError(`message names are limited to ${LINK_LIMITS.names} bytes (${plugin.slice(0, 80)}.${type.slice(0, 80)})`);
  const buffers: Uint8Array[] = [];
  const paths: Path[] = [];
  const value = extractBuffers(msg, [], buffers, paths, 0, `${plugin}.${type}`);
  if (buffers.length === 0) {
    const data = Buffer.from(JSON.stringify({ t: 'msg', plugin, type, msg }));
    if (data.length > LINK_LIMITS.messageBytes) throw tooLarge(plugin, type, data.length);
    return { data, binary: false, bytes: data.length, plugin };
  }
  if (buffers.length > LINK_LIMITS.messageBuffers) throw new RangeError(`message ${plugin}.${type} holds ${buffers.length} buffers; the link carries at most ${LINK_LIMITS.messageBuffers}`);
  const json = Buffer.from(JSON.stringify([value, paths]));
  let total = FIXED_HEADER + 4 * buffers.length + pluginBytes + typeBytes + json.length;
  for (const b of buffers) total += b.byteLength;
  if (total > LINK_LIMITS.messageBytes) throw tooLarge(plugin, type, total);
  const out = Buffer.allocUnsafe(total);
  out.writeUInt8(BINARY_VERSION, 0);
  out.writeUInt8(BINARY_KIND_MESSAGE, 1);
  out.writeUInt8(pluginBytes, 2);
  out.writeUInt8(typeBytes, 3);
  out.writeUInt32BE(json.length, 4);
  out.writeUInt16BE(buffers.length, 8);
  let at = FIXED_HEADER;
  for (const b of buffers) at = out.writeUInt32BE(b.byteLength, at);
  at += out.write(plugin, at);
  at += out.write(type, at);
  at += json.copy(out, at);
  for (const b of buffers) {
    out.set(b, at);
    at += b.byteLength;
  }
  return { data: out, binary: true, bytes: total, plugin };
}

function tooLarge(plugin: string, type: string, bytes: number): RangeError {
  return new RangeError(`message ${plugin}.${type} is ${bytes} bytes on the wire; the link carries at most ${LINK_LIMITS.messageBytes}`);
}

/**
 * The value with each Uint8Array replaced by null (copying only the containers on the way to one),
 * the buffers and their paths collected in order. Values JSON would serialise through toJSON (Date…)
 * are left to JSON.
 */
export function extractBuffers(v: unknown, path: Path, buffers: Uint8Array[], paths: Path[], depth: number, name: string): unknown {
  if (v instanceof Uint8Array) {
    buffers.push(v);
    paths.push([...path]);
    return null;
  }
  if (v === null || typeof v !== 'object' || typeof (v as { toJSON?: unknown }).toJSON === 'function') return v;
  if (depth >= MESSAGE_MAX_DEPTH) throw new RangeError(`message ${name} nests deeper than ${MESSAGE_MAX_DEPTH} levels (or is cyclic)`);
  // Containers are copied only from the first child that held a buffer: most messages have none.
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      const r = extractBuffers(v[i], path, buffers, paths, depth + 1, name);
      path.pop();
      if (out === undefined && r !== v[i]) out = v.slice(0, i);
      out?.push(r);
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, x] of Object.entries(v)) {
    // The receiving end refuses this key in any link message (plugins/sdk/json.ts): say so here, where the sender can hear it.
    if (k === '__proto__') throw new RangeError(`message ${name} holds a "__proto__" key, which the link refuses`);
    path.push(k);
    const r = extractBuffers(x, path, buffers, paths, depth + 1, name);
    path.pop();
    if (out === undefined && r !== x) out = { ...(v as Record<string, unknown>) };
    if (out !== undefined) out[k] = r;
  }
  return out ?? v;
}

/**
 * Decodes a binary frame received from the peer; throws LinkCodecError saying what is wrong. The
 * buffers in the result are views into frame (no copy): the caller hands in a frame it owns.
 */
export function decodeBinaryMessage(frame: Buffer): ChannelMessage {
  if (frame.length > LINK_LIMITS.messageBytes) throw new LinkCodecError(`binary frame is ${frame.length} bytes, limit ${LINK_LIMITS.messageBytes}`);
  if (frame.length < FIXED_HEADER) throw new LinkCodecError(`binary frame of ${frame.length} bytes is shorter than its header`);
  const version = frame.readUInt8(0);
  if (version !== BINARY_VERSION) throw new LinkCodecError(`binary frame version ${version} is not supported (expected ${BINARY_VERSION})`);
  const kind = frame.readUInt8(1);
  if (kind !== BINARY_KIND_MESSAGE) throw new LinkCodecError(`binary frame kind ${kind} is unknown`);
  const pluginBytes = frame.readUInt8(2);
  const typeBytes = frame.readUInt8(3);
  const jsonBytes = frame.readUInt32BE(4);
  const count = frame.readUInt16BE(8);
  if (pluginBytes === 0 || pluginBytes > LINK_LIMITS.names || typeBytes === 0 || typeBytes > LINK_LIMITS.names) throw new LinkCodecError(`binary frame names must be 1 to ${LINK_LIMITS.names} bytes`);
  if (count === 0 || count > LINK_LIMITS.messageBuffers) throw new LinkCodecError(`binary frame holds ${count} buffers; allowed 1 to ${LINK_LIMITS.messageBuffers}`);
  const lengthsEnd = FIXED_HEADER + 4 * count;
  if (frame.length < lengthsEnd) throw new LinkCodecError('binary frame ends inside its buffer lengths');
  let expected = lengthsEnd + pluginBytes + typeBytes + jsonBytes;
  const lengths: number[] = [];
  for (let i = 0; i < count; i++) {
    const n = frame.readUInt32BE(FIXED_HEADER + 4 * i);
    lengths.push(n);
    expected += n;
  }
  if (expected !== frame.length) throw new LinkCodecError(`binary frame is ${frame.length} bytes but its header accounts for ${expected}`);
  let at = lengthsEnd;
  const plugin = frame.toString('utf8', at, (at += pluginBytes));
  const type = frame.toString('utf8', at, (at += typeBytes));
  let parsed: unknown;
  try {
    parsed = parseWireJson(frame.toString('utf8', at, (at += jsonBytes)));
  } catch (err) {
    throw new LinkCodecError(err instanceof ForbiddenKeyError ? `binary frame JSON part: ${err.message}` : 'binary frame JSON part is malformed');
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !Array.isArray(parsed[1]) || parsed[1].length !== count) throw new LinkCodecError('binary frame JSON part must be [value, paths] with one path per buffer');
  const holder: { root: unknown } = { root: parsed[0] };
  const paths = parsed[1] as unknown[];
  for (let i = 0; i < count; i++) {
    const buf = frame.subarray(at, (at += lengths[i]));
    place(holder, paths[i], buf);
  }
  return { plugin, type, msg: holder.root };
}

/** Puts buf where path says, which must be a null left there by the encoder. */
export function place(holder: { root: unknown }, path: unknown, buf: Buffer): void {
  if (!Array.isArray(path) || path.length > MESSAGE_MAX_DEPTH) throw new LinkCodecError('binary frame buffer path must be an array of at most 64 keys');
  let parent: unknown = holder;
  let key: string | number = 'root';
  for (const step of path) {
    parent = slot(parent, key);
    key = step as string | number;
  }
  if (slot(parent, key) !== null) throw new LinkCodecError('binary frame buffer path does not lead to a placeholder');
  (parent as Record<string | number, unknown>)[key] = buf;
}

function slot(container: unknown, key: unknown): unknown {
  if (Array.isArray(container)) {
    if (typeof key !== 'number' || !Number.isInteger(key) || key < 0 || key >= container.length) throw new LinkCodecError('binary frame buffer path has a bad array index');
    return container[key];
  }
  if (container !== null && typeof container === 'object' && typeof key === 'string' && Object.hasOwn(container, key)) return (container as Record<string, unknown>)[key];
  throw new LinkCodecError('binary frame buffer path does not match the value');
}
