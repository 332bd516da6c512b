/**
 * Signing of calls between controllers (runtime/cluster/peer-sign.ts) and their bodies
 * (runtime/cluster/peer-codec.ts): a signature holds for its sender, timestamp and exact body within
 * the window, and nothing else; bodies carry Buffers as bytes and malformed ones are refused saying why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PEER_HEADERS, PEER_WINDOW_MS, PeerReplayGuard, signPeerCall, verifyPeerCall } from '../runtime/cluster/peer-sign.ts';
import { decodePeerBody, encodePeerBody, PEER_MAX_BODY } from '../runtime/cluster/peer-codec.ts';
import { LinkCodecError } from '../runtime/link-codec.ts';

const secret = Buffer.alloc(32, 7);
const body = Buffer.from('a body');
const now = 1_800_000_000_000;

test('a signed call verifies for its sender, and only with the same secret, body and a timestamp in the window', () => {
  const h = signPeerCall(secret, 'ctl_a', body, now);
  assert.deepEqual(verifyPeerCall(secret, h, body, now), { ok: true, from: 'ctl_a' });
  assert.deepEqual(verifyPeerCall(secret, h, body, now + PEER_WINDOW_MS), { ok: true, from: 'ctl_a' });
  const refused = (headers: Record<string, string | undefined>, b = body, at = now) => {
    const r = verifyPeerCall(secret, headers, b, at);
    return r.ok ? 'taken' : r.why;
  };
  assert.equal(refused({}), 'unsigned');
  assert.equal(refused({ ...h, [PEER_HEADERS.sig]: undefined }), 'unsigned');
  assert.equal(refused(h, body, now + PEER_WINDOW_MS + 1), 'stale or future timestamp');
  assert.equal(refused(h, body, now - PEER_WINDOW_MS - 1), 'stale or future timestamp');
  assert.equal(refused(h, Buffer.from('a bodY')), 'bad signature');
  assert.equal(refused({ ...h, [PEER_HEADERS.from]: 'ctl_b' }), 'bad signature');
  assert.equal(refused({ ...h, [PEER_HEADERS.ts]: String(now + 1) }), 'bad signature');
  assert.equal(refused({ ...h, [PEER_HEADERS.sig]: 'zz' }), 'bad signature');
  assert.equal(refused({ ...h, [PEER_HEADERS.ts]: 'yesterday' }), 'malformed signature headers');
  assert.equal(refused({ ...h, [PEER_HEADERS.nonce]: undefined }), 'unsigned');
  assert.equal(refused({ ...h, [PEER_HEADERS.nonce]: 'short' }), 'malformed signature headers');
  assert.equal(refused({ ...h, [PEER_HEADERS.nonce]: 'f'.repeat(32) }), 'bad signature');
  assert.equal(refused(signPeerCall(Buffer.alloc(32, 8), 'ctl_a', body, now)), 'bad signature');
  // The signature says nothing of the secret a reader could use: another sender, another body, another value.
  assert.notEqual(signPeerCall(secret, 'ctl_a', body, now)[PEER_HEADERS.sig], signPeerCall(secret, 'ctl_a', Buffer.from('other'), now)[PEER_HEADERS.sig]);
});

test('a call is taken once: its nonce is remembered for as long as its timestamp stays acceptable, and forgotten after', () => {
  const guard = new PeerReplayGuard(now);
  const h = signPeerCall(secret, 'ctl_a', body, now);
  assert.deepEqual(verifyPeerCall(secret, h, body, now, guard), { ok: true, from: 'ctl_a' });
  assert.deepEqual(verifyPeerCall(secret, h, body, now + 1, guard), { ok: false, why: 'replayed' });
  // The same body at the same millisecond is another call: its own nonce.
  assert.equal(verifyPeerCall(secret, signPeerCall(secret, 'ctl_a', body, now), body, now, guard).ok, true);
  // Still remembered at the edge of the window, after a generation swap.
  assert.deepEqual(verifyPeerCall(secret, h, body, now + PEER_WINDOW_MS, guard), { ok: false, why: 'replayed' });
  assert.equal(guard.fresh('a'.repeat(32), now + 2 * PEER_WINDOW_MS), true);
  assert.equal(guard.fresh(h[PEER_HEADERS.nonce], now + 3 * PEER_WINDOW_MS), false, 'one generation back');
  // Past every acceptable timestamp, both generations are dropped: memory stays bounded by the call rate.
  assert.equal(guard.fresh(h[PEER_HEADERS.nonce], now + 8 * PEER_WINDOW_MS), true);
  // A forged call does not reach the guard (nothing unsigned grows it).
  const g2 = new PeerReplayGuard(now);
  assert.equal(verifyPeerCall(Buffer.alloc(32, 9), h, body, now, g2).ok, false);
  assert.equal(g2.fresh(h[PEER_HEADERS.nonce], now), true);
});

test('peer bodies carry Buffers anywhere as bytes, and refuse what is malformed or too large', () => {
  const value = { a: 1, list: [Buffer.from([1, 2, 3]), { deep: Buffer.alloc(0) }], s: 'é', n: null };
  const back = decodePeerBody(encodePeerBody(value, 'test')) as any;
  assert.deepEqual(back.list[0], Buffer.from([1, 2, 3]));
  assert.ok(Buffer.isBuffer(back.list[1].deep) && back.list[1].deep.length === 0);
  assert.deepEqual({ ...back, list: null }, { a: 1, list: null, s: 'é', n: null });
  assert.equal(decodePeerBody(encodePeerBody(undefined, 'test')), null);
  assert.deepEqual(decodePeerBody(encodePeerBody(['x', 2], 'test')), ['x', 2]);
  assert.throws(() => encodePeerBody({ big: Buffer.alloc(PEER_MAX_BODY) }, 'big thing'), /big thing is \d+ bytes; calls between controllers carry at most/);
  const good = encodePeerBody({ b: Buffer.from('xy') }, 'test');
  for (const [what, bad] of [
    ['short', Buffer.from([0, 0])],
    ['json past the end', Buffer.concat([Buffer.from([0, 0, 1, 0]), Buffer.from('[]')])],
    ['not json', Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{{{')])],
    ['wrong shape', encodePeerBody({ x: 1 }, 'test').subarray(0, 4 + 2)],
    ['trailing bytes', Buffer.concat([good, Buffer.from('!')])],
    ['missing bytes', good.subarray(0, good.length - 1)],
  ] as const) {
    assert.throws(() => decodePeerBody(bad), LinkCodecError, what);
  }
  const json = Buffer.from('[{"__proto__":{"x":1}},[],[]]');
  const proto = Buffer.concat([Buffer.from([0, 0, 0, json.length]), json]);
  assert.throws(() => decodePeerBody(proto), /__proto__/);
});
