import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeFrame, encodeHeartbeatReply, HEADER_LEN, MAX_BODY, type Frame } from '../plugins/comet/protocol/frame.ts';
import { FrameStream } from '../plugins/comet/protocol/stream-decoder.ts';
import { pushBytes } from '../plugins/comet/protocol/push-bytes.ts';
import { parseAuthBody } from '../plugins/comet/protocol/auth-body.ts';
import { needPush } from '../plugins/comet/protocol/ops.ts';
import { goQuote, parseGoInt, splitInt32s } from '../plugins/comet/go/strconv.ts';
import { splitFrames } from './comet-fixtures.ts';

/** A header with any packLen/headerLen, to build frames goim's reader must refuse. */
function rawHeader(packLen: number, headerLen: number, ver: number, op: number, seq: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32BE(packLen, 0);
  b.writeInt16BE(headerLen, 4);
  b.writeInt16BE(ver, 6);
  b.writeInt32BE(op, 8);
  b.writeInt32BE(seq, 12);
  return b;
}

function feed(stream: FrameStream, chunks: Buffer[]): { frames: Array<Omit<Frame, 'body'> & { body: string }>; error?: string } {
  const frames: Array<Omit<Frame, 'body'> & { body: string }> = [];
  for (const c of chunks) {
    const error = stream.push(c, (f) => {
      frames.push({ ver: f.ver, op: f.op, seq: f.seq, body: f.body.toString('latin1') });
      return true;
    });
    if (error) return { frames, error };
  }
  return { frames };
}

test('encodeFrame writes the 16-byte big-endian header then the body', () => {
  const f = encodeFrame(1, 7, 3, Buffer.from('hi'));
  assert.equal(f.toString('hex'), '00000012' + '0010' + '0001' + '00000007' + '00000003' + '6869');
  assert.equal(encodeFrame(1, 8, 1).length, HEADER_LEN, 'op 8 has no body: packLen 16');
  const hb = encodeHeartbeatReply(0, 9, 123456, 3);
  assert.equal(hb.readInt32BE(0), 20, 'heartbeat reply packLen 20');
  assert.equal(hb.readInt16BE(6), 0);
  assert.equal(hb.readInt32BE(8), 3);
  assert.equal(hb.readInt32BE(12), 9);
  assert.equal(hb.readInt32BE(16), 123456);
});

test('WebSocket message: one frame; goim reader limits', () => {
  const ok = decodeMessage(encodeFrame(1, 2, 5, Buffer.alloc(MAX_BODY, 1)));
  assert.ok(typeof ok !== 'string' && ok.body.length === 4096, 'a 4096-byte body is accepted');
  assert.equal(decodeMessage(encodeFrame(1, 2, 5, Buffer.alloc(MAX_BODY + 1))), 'packLen', '4097 is refused');
  assert.equal(decodeMessage(Buffer.alloc(15)), 'packLen', 'shorter than a header');
  assert.equal(decodeMessage(rawHeader(16, 12, 1, 2, 1)), 'headerLen');
  assert.equal(decodeMessage(rawHeader(-1, 16, 1, 2, 1)), 'packLen');
  assert.equal(decodeMessage(Buffer.concat([rawHeader(40, 16, 1, 2, 1), Buffer.alloc(4)])), 'packLen', 'packLen past the message (goim would panic)');
  const trailing = decodeMessage(Buffer.concat([rawHeader(18, 16, 1, 4, 1), Buffer.from('abXYZ')]));
  assert.ok(typeof trailing !== 'string');
  assert.equal(trailing.body.toString(), 'ab', 'bytes after packLen are ignored, as goim does');
  const small = decodeMessage(rawHeader(3, 16, 1, 2, 1));
  assert.ok(typeof small !== 'string' && small.body.length === 0, 'packLen under 16: no body (goim: bodyLen <= 0)');
});

test('TCP stream: several frames in one read, a frame split across reads, byte by byte', () => {
  const a = encodeFrame(1, 7, 1, Buffer.from('{"mid":1}'));
  const b = encodeFrame(0, 2, 0);
  const c = encodeFrame(1, 12, 2, Buffer.from('live://9'));
  const all = Buffer.concat([a, b, c]);
  const want = [
    { ver: 1, op: 7, seq: 1, body: '{"mid":1}' },
    { ver: 0, op: 2, seq: 0, body: '' },
    { ver: 1, op: 12, seq: 2, body: 'live://9' },
  ];
  assert.deepEqual(feed(new FrameStream(), [all]).frames, want, 'three frames in one read');
  assert.deepEqual(feed(new FrameStream(), [...all].map((x) => Buffer.from([x]))).frames, want, 'one byte per read');
  for (let cut = 1; cut < all.length; cut++) {
    assert.deepEqual(feed(new FrameStream(), [all.subarray(0, cut), all.subarray(cut)]).frames, want, `split at ${cut}`);
  }
});

test('TCP stream: limits and header errors (the connection closes, nothing is answered)', () => {
  const max = encodeFrame(1, 4, 1, Buffer.alloc(4096, 0x61));
  assert.equal(feed(new FrameStream(), [max.subarray(0, 100), max.subarray(100)]).frames[0].body.length, 4096, '4096 accepted, split');
  const over = encodeFrame(1, 4, 1, Buffer.alloc(4097));
  assert.equal(feed(new FrameStream(), [over]).error, 'packLen');
  assert.equal(feed(new FrameStream(), [over.subarray(0, 10), over.subarray(10)]).error, 'packLen', 'refused as soon as the split header is whole');
  assert.equal(feed(new FrameStream(), [rawHeader(16, 20, 1, 2, 1)]).error, 'headerLen');
  const r = feed(new FrameStream(), [Buffer.concat([encodeFrame(1, 2, 1), rawHeader(16, 0, 1, 2, 1)])]);
  assert.equal(r.frames.length, 1, 'frames before the bad one are handled');
  assert.equal(r.error, 'headerLen');
  const neg = feed(new FrameStream(), [Buffer.concat([rawHeader(-5, 16, 1, 2, 1), encodeFrame(1, 3, 2)])]);
  assert.deepEqual(neg.frames.map((f) => f.op), [2, 3], 'packLen < 16 is a header-only frame (goim ReadTCP)');
});

test('TCP stream: onFrame returning false stops the read', () => {
  const s = new FrameStream();
  let n = 0;
  s.push(Buffer.concat([encodeFrame(1, 2, 1), encodeFrame(1, 2, 2)]), () => (n++, false));
  assert.equal(n, 1);
});

test('push bytes: WebSocket gets one op-9 frame of inner frames, TCP the inner frames bare, from one buffer', () => {
  const p = pushBytes([
    { op: 1000, body: Buffer.from('{"test":1}') },
    { op: 1001, body: Buffer.from('x') },
  ]);
  const outer = splitFrames(p.ws);
  assert.equal(outer.length, 1);
  assert.deepEqual({ packLen: outer[0].packLen, ver: outer[0].ver, op: outer[0].op, seq: outer[0].seq }, { packLen: p.ws.length, ver: 1, op: 9, seq: 0 });
  const inner = splitFrames(p.ws.subarray(16)).map((f) => ({ ver: f.ver, op: f.op, seq: f.seq, body: f.body.toString() }));
  assert.deepEqual(inner, [
    { ver: 1, op: 1000, seq: 0, body: '{"test":1}' },
    { ver: 1, op: 1001, seq: 0, body: 'x' },
  ]);
  assert.equal(p.tcp.buffer, p.ws.buffer, 'TCP bytes are a view of the WebSocket bytes');
  assert.deepEqual(p.tcp, p.ws.subarray(16));
  assert.equal(p.count, 2);
});

test('auth body: goim JS client and benchmark client bodies', () => {
  assert.deepEqual(parseAuthBody(Buffer.from('{"mid":123, "room_id":"live://1000", "platform":"web", "accepts":[1000,1001,1002]}')), {
    mid: '123', key: '', roomId: 'live://1000', platform: 'web', accepts: [1000, 1001, 1002],
  });
  assert.deepEqual(parseAuthBody(Buffer.from('{"mid":7,"key":"","room_id":"test://1","platform":"ios","accepts":[1000,1001,1002]}')), {
    mid: '7', key: '', roomId: 'test://1', platform: 'ios', accepts: [1000, 1001, 1002],
  });
});

test('auth body: encoding/json rules (refusals close the connection)', () => {
  const bad = (s: string) => 'error' in parseAuthBody(Buffer.from(s));
  assert.ok(bad('not json'));
  assert.ok(bad('{"mid":"123"}'), 'mid as a string');
  assert.ok(bad('{"mid":1.5}'));
  assert.ok(bad('{"mid":1.0}'), 'Go refuses a float literal for int64');
  assert.ok(bad('{"mid":9223372036854775808}'), 'past int64');
  assert.ok(bad('{"key":5}'));
  assert.ok(bad('{"room_id":[]}'));
  assert.ok(bad('{"accepts":"1000"}'));
  assert.ok(bad('{"accepts":[2147483648]}'), 'past int32');
  assert.ok(bad('[1,2]'));
  const big = parseAuthBody(Buffer.from('{"mid":9223372036854775807}'));
  assert.ok(!('error' in big) && big.mid === '9223372036854775807', 'int64 mids keep every digit');
  const loose = parseAuthBody(Buffer.from('{"MID":5,"Room_ID":"a://b","extra":{"mid":"x"},"accepts":null,"key":null}'));
  assert.deepEqual(loose, { mid: '5', key: '', roomId: 'a://b', platform: '', accepts: [] }, 'names match case-insensitively; unknown fields and null ignored');
  assert.deepEqual(parseAuthBody(Buffer.from('null')), { mid: '0', key: '', roomId: '', platform: '', accepts: [] });
  const dup = parseAuthBody(Buffer.from('{"mid":1,"mid":2,"token":"t"}'));
  assert.ok(!('error' in dup) && dup.mid === '2' && dup.token === 't', 'the later duplicate wins');
  const escaped = parseAuthBody(Buffer.from('{"key":"a\\"b}","mid":3}'));
  assert.ok(!('error' in escaped) && escaped.key === 'a"b}' && escaped.mid === '3');
});

test('accepts: ops below 1000 always pass (goim NeedPush), business ops only when watched', () => {
  const watch = new Set([1000]);
  assert.equal(needPush(5, new Set()), true);
  assert.equal(needPush(999, new Set()), true);
  assert.equal(needPush(1000, watch), true);
  assert.equal(needPush(1001, watch), false);
  assert.equal(needPush(-1, new Set()), false);
});

test('Go number parsing and its error texts', () => {
  assert.deepEqual(parseGoInt('+42', 32), { ok: true, value: 42n });
  assert.deepEqual(parseGoInt('abc', 32), { ok: false, error: 'strconv.ParseInt: parsing "abc": invalid syntax' });
  assert.deepEqual(parseGoInt('2147483648', 32), { ok: false, error: 'strconv.ParseInt: parsing "2147483648": value out of range' });
  assert.deepEqual(parseGoInt('', 64), { ok: false, error: 'strconv.ParseInt: parsing "": invalid syntax' });
  assert.equal(goQuote('a"b\n\x01'), '"a\\"b\\n\\x01"');
  assert.deepEqual(splitInt32s('1000,1001'), [1000, 1001]);
  assert.deepEqual(splitInt32s(''), []);
  assert.equal(splitInt32s('1000,x'), undefined, 'one bad element fails the list');
  assert.equal(splitInt32s('1000, 1001'), undefined, 'no spaces (ParseInt)');
});
