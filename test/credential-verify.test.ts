/** The link credential check runs synchronously (controller/identity.ts); it must refuse all jose would. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { verifyEd25519Jwt } from '../controller/identity.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

function sign(over: { iss?: string; aud?: string | string[]; sub?: string; jti?: string; exp?: number; nbf?: number } = {}, key: KeyObject = privateKey) {
  const t = new SignJWT({ ...(over.nbf !== undefined ? { nbf: over.nbf } : {}) }).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(over.iss ?? 'outpost-controller').setAudience(over.aud ?? 'outpost-link').setIssuedAt();
  if (over.sub !== '') t.setSubject(over.sub ?? 'n_1');
  if (over.jti !== '') t.setJti(over.jti ?? 'j-1');
  if (over.exp !== undefined) t.setExpirationTime(over.exp);
  return t.sign(key);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

test('a credential this controller signed is accepted: node id and jti', async () => {
  assert.deepEqual(verifyEd25519Jwt(await sign(), publicKey), { nodeId: 'n_1', jti: 'j-1' });
  assert.deepEqual(verifyEd25519Jwt(await sign({ aud: ['x', 'outpost-link'] }), publicKey), { nodeId: 'n_1', jti: 'j-1' });
});

test('every defect is refused with a reason naming it', async () => {
  const good = await sign();
  const [h, p, s] = good.split('.');
  const cases: Array<[string, RegExp]> = [
    ['', /not a compact JWS/],
    ['a.b', /not a compact JWS/],
    [`${h}.${p}.${s}.x`, /not a compact JWS/],
    [`${h}.${p}.${s}=`, /not a compact JWS/],
    [`${h}.${b64({ sub: 'n_2', jti: 'j-1', iss: 'outpost-controller', aud: 'outpost-link' })}.${s}`, /signature/],
    [await sign({}, other.privateKey), /signature/],
    [`${b64({ alg: 'none' })}.${p}.`, /not a compact JWS|algorithm/],
    [`${b64({ alg: 'none' })}.${p}.${s}`, /algorithm "none"/],
    [`${b64({ alg: 'HS256' })}.${p}.${s}`, /algorithm "HS256"/],
    [`${b64({ alg: 'EdDSA', crit: ['x'] })}.${p}.${s}`, /critical/],
    [`${Buffer.from('not json').toString('base64url')}.${p}.${s}`, /header is not a JSON object/],
    [await sign({ iss: 'someone-else' }), /issuer/],
    [await sign({ aud: 'outpost-api' }), /audience/],
    [await sign({ exp: Math.floor(Date.now() / 1000) - 10 }), /expired/],
    [await sign({ nbf: Math.floor(Date.now() / 1000) + 3600 }), /not yet valid/],
    [await sign({ sub: '' }), /lacks sub or jti/],
    [await sign({ jti: '' }), /lacks sub or jti/],
  ];
  for (const [jwt, re] of cases) assert.throws(() => verifyEd25519Jwt(jwt, publicKey), re, jwt.slice(0, 60));
});

test('a credential with a future expiry is accepted until then', async () => {
  const exp = Math.floor(Date.now() / 1000) + 60;
  const jwt = await sign({ exp });
  assert.equal(verifyEd25519Jwt(jwt, publicKey).nodeId, 'n_1');
  assert.throws(() => verifyEd25519Jwt(jwt, publicKey, (exp + 1) * 1000), /expired/);
});
