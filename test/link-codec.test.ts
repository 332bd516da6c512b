/** The link's message frames (runtime/link-codec.ts) and the per-link ring (runtime/frame-ring.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINK_LIMITS } from '../runtime/link.ts';
import { decodeBinaryMessage, encodeMessage, LinkCodecError, MESSAGE_MAX_DEPTH, type EncodedFrame } from '../runtime/link-codec.ts';
import { FrameRing } from '../runtime/frame-ring.ts';

function roundTrip(msg: unknown): unknown {
  const f = encodeMessage('comet', 'push', msg);
  assert.equal(f.binary, true);
  const d = decodeBinaryMessage(f.data);
  assert.equal(d.plugin, 'comet');
  assert.equal(d.type, 'push');
  return d.msg;
}

/** A well-formed binary frame, built by hand so tests can break one field at a time. */
function frame(o: { version?: number; kind?: number; plugin?: string; type?: string; json?: string; buffers?: Buffer[]; lengths?: number[]; count?: number }): Buffer {
  const plugin = Buffer.from(o.plugin ?? 'p');
  const type = Buffer.from(o.type ?? 't');
  const buffers = o.buffers ?? [Buffer.from('ab')];
  const json = Buffer.from(o.json ?? JSON.stringify([null, buffers.map(() => [])]));
  const lengths = o.lengths ?? buffers.map((b) => b.length);
  const head = Buffer.alloc(10 + 4 * lengths.length);
  head.writeUInt8(o.version ?? 1, 0);
  head.writeUInt8(o.kind ?? 1, 1);
  head.writeUInt8(plugin.length, 2);
  head.writeUInt8(type.length, 3);
  head.writeUInt32BE(json.length, 4);
  head.writeUInt16BE(o.count ?? lengths.length, 8);
  lengths.forEach((n, i) => head.writeUInt32BE(n, 10 + 4 * i));
  return Buffer.concat([head, plugin, type, json, ...buffers]);
}

test('a message without buffers is a JSON text frame', () => {
  const f = encodeMessage('comet', 'presence', { keys: ['a', 'b'], n: 2 });
  assert.equal(f.binary, false);
  assert.deepEqual(JSON.parse(String(f.data)), { t: 'msg', plugin: 'comet', type: 'presence', msg: { keys: ['a', 'b'], n: 2 } });
  assert.equal(f.bytes, f.data.length);
  assert.equal(f.plugin, 'comet');
});

test('buffers anywhere in a message round-trip byte for byte, in a binary frame without base64', () => {
  const body = Buffer.from([0, 1, 2, 255, 254, 0x7b, 0x22]);
  const empty = Buffer.alloc(0);
  const big = Buffer.alloc(64 * 1024, 7);
  const msg = { keys: ['k1', 'k2'], body, nested: { list: [1, empty, { deep: big }], s: 'x' }, n: null, t: true };
  const f = encodeMessage('comet', 'push', msg);
  assert.equal(f.binary, true);
  assert.equal(f.bytes, f.data.length);
  // The raw bytes are in the frame as they are (not as base64 or a JSON array of numbers).
  assert.ok(f.data.includes(body));
  assert.ok(f.bytes < big.length + 200);
  const back = roundTrip(msg) as typeof msg;
  assert.deepEqual(back.keys, ['k1', 'k2']);
  assert.ok(Buffer.isBuffer(back.body) && back.body.equals(body));
  assert.ok(Buffer.isBuffer(back.nested.list[1]) && (back.nested.list[1] as Buffer).length === 0);
  assert.ok(((back.nested.list[2] as { deep: Buffer }).deep as Buffer).equals(big));
  assert.equal(back.nested.s, 'x');
  assert.equal(back.n, null);
  assert.equal(back.t, true);
  // The sender's value is not changed by encoding.
  assert.equal(msg.body, body);
});

test('a bare buffer, a Uint8Array and an array of buffers round-trip; a __proto__ key is refused', () => {
  assert.ok((roundTrip(Buffer.from('raw')) as Buffer).equals(Buffer.from('raw')));
  const u8 = roundTrip({ u: new Uint8Array([9, 8, 7]) }) as { u: Buffer };
  assert.ok(Buffer.isBuffer(u8.u) && u8.u.equals(Buffer.from([9, 8, 7])));
  const arr = roundTrip([Buffer.from('a'), 'mid', Buffer.from('b')]) as unknown[];
  assert.equal(String(arr[0]), 'a');
  assert.equal(arr[1], 'mid');
  assert.equal(String(arr[2]), 'b');
  // The link refuses "__proto__" keys everywhere (plugins/sdk/json.ts): the sender hears it, the receiver closes on it.
  const proto = JSON.parse('{"__proto__": 1, "b": null}') as Record<string, unknown>;
  assert.throws(() => encodeMessage('p', 't', proto), { name: 'RangeError', message: /p\.t holds a "__proto__" key/ });
  proto.b = Buffer.from('x');
  assert.throws(() => encodeMessage('p', 't', proto), { name: 'RangeError' });
});

test('values with toJSON (Date) are left to JSON', () => {
  const d = new Date(0);
  const back = roundTrip({ at: d, b: Buffer.from('x') }) as { at: string };
  assert.equal(back.at, d.toJSON());
});

test('encoding refuses what could never cross the link, naming the bound', () => {
  assert.throws(() => encodeMessage('x'.repeat(65), 't', 1), { name: 'RangeError', message: /names are limited to 64 bytes/ });
  assert.throws(() => encodeMessage('p', 't'.repeat(65), 1), { name: 'RangeError' });
  assert.throws(() => encodeMessage('p', 't', { s: 'x'.repeat(LINK_LIMITS.messageBytes) }), { name: 'RangeError', message: /p\.t is \d+ bytes on the wire; the link carries at most 1048576/ });
  assert.throws(() => encodeMessage('p', 't', { b: Buffer.alloc(LINK_LIMITS.messageBytes) }), { name: 'RangeError', message: /bytes on the wire/ });
  assert.throws(() => encodeMessage('p', 't', Array.from({ length: LINK_LIMITS.messageBuffers + 1 }, () => Buffer.alloc(1))), { name: 'RangeError', message: /holds 257 buffers; the link carries at most 256/ });
  const cyclic: Record<string, unknown> = { b: Buffer.from('x') };
  cyclic.self = cyclic;
  assert.throws(() => encodeMessage('p', 't', cyclic), { name: 'RangeError', message: /deeper than 64 levels \(or is cyclic\)/ });
  let deep: unknown = Buffer.from('x');
  for (let i = 0; i < MESSAGE_MAX_DEPTH + 1; i++) deep = [deep];
  assert.throws(() => encodeMessage('p', 't', deep), { name: 'RangeError' });
  // Exactly at the bound is fine.
  const fits = Buffer.alloc(LINK_LIMITS.messageBytes - 200);
  assert.ok(encodeMessage('p', 't', fits).bytes <= LINK_LIMITS.messageBytes);
});

test('a hand-built frame decodes (the format is what docs/api.md says)', () => {
  const d = decodeBinaryMessage(frame({ plugin: 'comet', type: 'push', json: JSON.stringify([{ body: null, k: 1 }, [['body']]]), buffers: [Buffer.from('hi')] }));
  assert.deepEqual({ ...d, msg: { ...(d.msg as object), body: String((d.msg as { body: Buffer }).body) } }, { plugin: 'comet', type: 'push', msg: { body: 'hi', k: 1 } });
});

test('malformed binary frames are refused with a reason', () => {
  const bad = (f: Buffer, re: RegExp) => assert.throws(() => decodeBinaryMessage(f), (err: Error) => err instanceof LinkCodecError && re.test(err.message));
  bad(Buffer.alloc(3), /shorter than its header/);
  bad(frame({ version: 2 }), /version 2 is not supported/);
  bad(frame({ kind: 9 }), /kind 9 is unknown/);
  bad(frame({ plugin: '' }), /names must be 1 to 64 bytes/);
  bad(frame({ type: 'y'.repeat(65) }), /names must be 1 to 64 bytes/);
  bad(frame({ buffers: [], json: '[null,[]]' }), /holds 0 buffers/);
  bad(frame({ count: 300, lengths: [2] }), /holds 300 buffers/);
  bad(frame({ count: 5, lengths: [2] }), /ends inside its buffer lengths|header accounts/);
  bad(frame({ lengths: [3] }), /header accounts for/);
  bad(Buffer.concat([frame({}), Buffer.from('trailing')]), /header accounts for/);
  bad(frame({ json: '[null, [[]' }), /JSON part is malformed/);
  bad(frame({ json: '{"a":1}' }), /must be \[value, paths\]/);
  bad(frame({ json: '[null, []]' }), /one path per buffer/);
  bad(frame({ json: '[{"a":1}, [["a"]]]' }), /does not lead to a placeholder/);
  bad(frame({ json: '[{"a":null}, [["b"]]]' }), /does not match the value/);
  bad(frame({ json: '[[null], [[1]]]' }), /bad array index/);
  bad(frame({ json: '[[null], [["0"]]]' }), /bad array index/);
  bad(frame({ json: '[{"a":null}, ["a"]]' }), /must be an array/);
  bad(frame({ json: '[{"a":null}, [["a","b"]]]' }), /does not match the value/);
  bad(frame({ json: '[{"a":null}, [["toString"]]]' }), /does not match the value/);
  bad(frame({ json: '[{"__proto__":null}, [["__proto__"]]]' }), /JSON part: the key "__proto__" is not allowed/);
  const huge = Buffer.alloc(LINK_LIMITS.messageBytes + 1);
  bad(huge, /limit 1048576/);
});

const f = (bytes: number, plugin = 'p'): EncodedFrame => ({ data: Buffer.from('x'), binary: false, bytes, plugin });

test('the ring evicts the oldest past its count or byte bound and keeps order', () => {
  const ring = new FrameRing(3, 100);
  const a = f(10, 'a');
  const b = f(10, 'b');
  const c = f(10, 'c');
  const d = f(10, 'd');
  assert.deepEqual(ring.push(a), []);
  ring.push(b);
  ring.push(c);
  assert.deepEqual(ring.push(d), [a]);
  assert.equal(ring.size, 3);
  assert.equal(ring.bytes, 30);
  const e = f(80, 'e');
  // 30 + 80 is over 100 bytes: the oldest goes, and exactly 100 fits.
  assert.deepEqual(ring.push(e), [b]);
  assert.equal(ring.bytes, 100);
  assert.equal(ring.shift(), c);
  assert.equal(ring.peek(), d);
  const huge = f(500, 'huge');
  assert.deepEqual(ring.push(huge), [d, e]);
  assert.equal(ring.size, 1);
  assert.deepEqual(ring.clear(), [huge]);
  assert.equal(ring.size, 0);
  assert.equal(ring.bytes, 0);
  assert.equal(ring.shift(), undefined);
});
