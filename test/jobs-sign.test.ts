import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appPayload, newAppKey, newNonce, newSecretKey, randomAlphanumerics, serendipitySignature, signedHeaders } from '../plugins/jobs/sign.ts';

test("the original's own test vector (tests/Cases/HttpTest.php:149-154) signs byte for byte", () => {
  const sig = serendipitySignature('1639044971', 'jcpxB9oadf6al6Tv', '57bcd60eefcac9701fd2407080a5a7b0', 'pOKCTaHwMZaKPk3lfbVYfW07NuFjMAXX');
  assert.equal(sig, 'MDcwYmNkZjc2ZThhYmYxNWUwYmNlZWFkNmE1YjU2M2U3MDQxNWNkN2RkN2QyMmVjODhhNDE3MGU5MzEyZTkyNQ==');
  // base64 of the 64-character lowercase hex text, not of the raw digest.
  assert.equal(sig.length, 88);
  assert.match(Buffer.from(sig, 'base64').toString('utf8'), /^[0-9a-f]{64}$/);
});

test('payload is md5(appName) in lowercase hex, as in the document', () => {
  assert.equal(appPayload('帅的批爆1'), '57bcd60eefcac9701fd2407080a5a7b0');
  assert.equal(appPayload('帅的批爆'), 'f3c5fa5b2b4045bcb1132ddece49c0f4');
});

test('keys and nonces have the original lengths and alphabet, and differ per call', () => {
  assert.match(newAppKey(), /^[A-Za-z0-9]{16}$/);
  assert.match(newSecretKey(), /^[A-Za-z0-9]{32}$/);
  assert.match(newNonce(), /^[A-Za-z0-9]{16}$/);
  const many = new Set(Array.from({ length: 1000 }, () => newNonce()));
  assert.equal(many.size, 1000);
  // All 62 characters are drawn over enough draws (a biased or truncated alphabet would miss some).
  assert.equal(new Set(randomAlphanumerics(20_000)).size, 62);
});

test('a header set is signed now over its own fields', () => {
  const now = Date.UTC(2021, 6, 27, 9, 30, 30);
  const h = signedHeaders('E3F5l1uKFcXUe1gd', '帅的批爆1', 'pOKCTaHwMZaKPk3lfbVYfW07NuFjMAXX', now);
  assert.deepEqual(Object.keys(h).sort(), ['app_key', 'nonce', 'payload', 'signature', 'timestamps']);
  assert.equal(h.timestamps, String(now / 1000));
  assert.equal(h.payload, '57bcd60eefcac9701fd2407080a5a7b0');
  assert.equal(h.app_key, 'E3F5l1uKFcXUe1gd');
  assert.equal(h.signature, serendipitySignature(h.timestamps, h.nonce, h.payload, 'pOKCTaHwMZaKPk3lfbVYfW07NuFjMAXX'));
  assert.notEqual(signedHeaders('k', 'a', 's', now).nonce, signedHeaders('k', 'a', 's', now).nonce);
});
