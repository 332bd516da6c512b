import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogNonceStore, MemoryNonceStore, nonceRecord, type NonceStore } from '../plugins/jobs/nonce-store.ts';
import { openLog } from '../plugins/sdk/durable/log.ts';
import { FailureLimiter } from '../plugins/jobs/rate-limit.ts';
import { appPayload, serendipitySignature, signedHeaders } from '../plugins/jobs/sign.ts';
import { RequestVerifier, type SigningApp } from '../plugins/jobs/verify.ts';

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);
const app: SigningApp & { appName: string; secretKey: string } = { appKey: 'E3F5l1uKFcXUe1gd', appName: 'shop', payload: appPayload('shop'), secretKey: 'pOKCTaHwMZaKPk3lfbVYfW07NuFjMAXX' };
const other: SigningApp & { appName: string; secretKey: string } = { appKey: 'wWt1aSZj2KXMO7fE', appName: 'blog', payload: appPayload('blog'), secretKey: 'Zz'.repeat(16) };

function setup(nonces: NonceStore = new MemoryNonceStore(() => clock.now), extra: { perAppIp?: number; perIp?: number } = {}) {
  const v = new RequestVerifier({
    findApp: (k) => [app, other].find((a) => a.appKey === k),
    nonces,
    limiter: new FailureLimiter(),
    windowSec: 300,
    nonceRetentionSec: 300,
    perAppIp: { max: extra.perAppIp ?? 100, windowSec: 60 },
    perIp: { max: extra.perIp ?? 100, windowSec: 60 },
    now: () => clock.now,
  });
  return v;
}
const clock = { now: T0 };
const headersAt = (ms: number, a = app) => signedHeaders(a.appKey, a.appName, a.secretKey, ms);

async function accept(v: RequestVerifier<SigningApp>, h: Record<string, string>, ip = '127.0.0.1') {
  const r = await v.verify(h, ip);
  if (!r.ok) assert.fail(`refused: ${r.message}`);
  await r.claim.commit();
  return r;
}
async function refused(v: RequestVerifier<SigningApp>, h: Record<string, string>, pattern: RegExp, ip = '127.0.0.1', status = 401) {
  const r = await v.verify(h, ip);
  assert.equal(r.ok, false, 'expected a refusal');
  if (!r.ok) {
    assert.equal(r.status, status);
    assert.match(r.message, pattern);
  }
}

test('a correctly signed request is accepted and names its app', async () => {
  clock.now = T0;
  const r = await accept(setup(), headersAt(T0));
  assert.equal(r.app.appKey, app.appKey);
});

test('the timestamp window holds on both sides, to the second', async () => {
  clock.now = T0;
  const v = setup();
  await accept(v, headersAt(T0 - 300_000));
  await accept(v, headersAt(T0 + 300_000));
  await refused(v, headersAt(T0 - 301_000), /301 s in the past, outside the ±300 s window/);
  await refused(v, headersAt(T0 + 301_000), /301 s in the future/);
  // The original's date-string timestamps (document table) are refused with a hint, not misread.
  await refused(v, { ...headersAt(T0), timestamps: '2021-03-04 11:42:36' }, /Unix seconds/);
});

test('a nonce is accepted once per app; another app may use the same nonce', async () => {
  clock.now = T0;
  const v = setup();
  const h = headersAt(T0);
  await accept(v, h);
  await refused(v, h, /nonce: already used/);
  const theirs = { app_key: other.appKey, nonce: h.nonce, timestamps: h.timestamps, payload: other.payload, signature: serendipitySignature(h.timestamps, h.nonce, other.payload, other.secretKey) };
  await accept(v, theirs);
});

test('concurrent requests with one nonce: exactly one wins', async () => {
  clock.now = T0;
  const v = setup();
  const h = headersAt(T0);
  const results = await Promise.all(Array.from({ length: 20 }, () => v.verify(h, '127.0.0.1')));
  assert.equal(results.filter((r) => r.ok).length, 1);
});

test('a nonce is forgotten only once its request could no longer pass the window', async () => {
  clock.now = T0;
  const store = new MemoryNonceStore(() => clock.now);
  const v = setup(store);
  const h = headersAt(T0);
  await accept(v, h);
  clock.now = T0 + 300_000;
  await refused(v, h, /already used/);
  clock.now = T0 + 301_000;
  await refused(v, h, /outside the ±300 s window/);
  assert.equal(store.size(), 0, 'expired nonces are pruned');
});

/** The store on the SDK's durable log in dir, as the controller half opens it through ctx.openLog. */
function openStore(dir: string, opts: { compactAfterBytes?: number } = {}) {
  return LogNonceStore.open((load, snapshot) => openLog('jobs.nonces', nonceRecord, { dir, load, snapshot, fsync: 'none', compactAfterBytes: opts.compactAfterBytes }), () => clock.now);
}

test('the log-backed store keeps nonces across a restart (and a crash without close)', async () => {
  clock.now = T0;
  const dir = await mkdtemp(join(tmpdir(), 'jobs-nonce-'));
  try {
    const first = await openStore(dir);
    const h = headersAt(T0);
    await accept(setup(first), h);
    // No close(): a kill -9 leaves the log as the last commit wrote it.
    const second = await openStore(dir);
    await refused(setup(second), h, /already used/);
    await accept(setup(second), headersAt(T0));
    await second.close();
    // Past the window nothing is remembered, and a compaction writes nothing of it.
    clock.now = T0 + 400_000;
    const third = await openStore(dir);
    assert.equal(third.size(), 0);
    await accept(setup(third), headersAt(clock.now));
    await third.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a compaction keeps only the nonces inside their window', async () => {
  clock.now = T0;
  const dir = await mkdtemp(join(tmpdir(), 'jobs-nonce-'));
  try {
    const store = await openStore(dir, { compactAfterBytes: 200 });
    for (let i = 0; i < 10; i++) await (await store.reserve('k', `old${i}`, T0 + 1000))!.commit();
    clock.now = T0 + 2000;
    for (let i = 0; i < 3; i++) await (await store.reserve('k', `new${i}`, T0 + 60_000))!.commit();
    await store.close();
    const text = await readAll(dir);
    assert.doesNotMatch(text, /old\d/, 'expired nonces are not carried into the snapshot');
    const again = await openStore(dir);
    assert.equal(again.size(), 3);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function readAll(dir: string): Promise<string> {
  const names = await readdir(dir);
  return (await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')))).join('\n');
}

test('a refused request burns nothing: bad signature, then the real one with the same nonce passes', async () => {
  clock.now = T0;
  const v = setup();
  const h = headersAt(T0);
  await refused(v, { ...h, signature: serendipitySignature(h.timestamps, h.nonce, h.payload, 'wrong-secret') }, /signature: does not match/);
  await refused(v, { ...h, payload: appPayload('somebody else') }, /payload: must be md5\(appName\)/);
  await refused(v, { ...h, timestamps: String(Number(h.timestamps) - 1) }, /signature: does not match/);
  await accept(v, h);
});

test('a request refused after verification releases its nonce (nothing changed, the nonce stays usable)', async () => {
  clock.now = T0;
  const v = setup();
  const h = headersAt(T0);
  const r = await v.verify(h, '127.0.0.1');
  assert.ok(r.ok);
  if (r.ok) r.claim.release();
  await accept(v, h);
});

test('tampered payload, wrong key, unknown app and missing headers are refused with a reason', async () => {
  clock.now = T0;
  const v = setup();
  const h = headersAt(T0);
  // The payload is signed, but it must also be md5(appName): a re-signed foreign payload does not pass.
  const foreign = appPayload('not-shop');
  await refused(v, { ...h, payload: foreign, signature: serendipitySignature(h.timestamps, h.nonce, foreign, app.secretKey) }, /payload/);
  // Signed with the other app's secret under this app's key.
  await refused(v, { ...h, signature: serendipitySignature(h.timestamps, h.nonce, h.payload, other.secretKey) }, /signature/);
  await refused(v, { ...h, app_key: 'NoSuchAppKey0000' }, /unknown app_key "NoSuchAppKey0000"/);
  await refused(v, { nonce: h.nonce, timestamps: h.timestamps }, /missing signed headers: app_key, payload, signature/);
  await refused(v, { ...h, nonce: 'has space' }, /header nonce/);
  // The dash form passes where a proxy rewrote the underscore.
  const { app_key, ...rest } = headersAt(T0);
  await accept(v, { ...rest, 'app-key': app_key });
});

test('failures are rate-limited per (app_key, IP) and per IP; other callers are not locked out', async () => {
  clock.now = T0;
  const v = setup(undefined, { perAppIp: 3, perIp: 5 });
  const bad = () => ({ ...headersAt(clock.now), signature: 'x'.repeat(88) });
  for (let i = 0; i < 3; i++) await refused(v, bad(), /signature/, '10.0.0.1');
  // Even a correct request from that IP for that app waits for the window: the limit is checked first.
  await refused(v, headersAt(clock.now), /too many failed signature checks from 10\.0\.0\.1; retry in 60 s/, '10.0.0.1', 429);
  // The same app from another address is unaffected.
  await accept(v, headersAt(clock.now), '10.0.0.2');
  // Per IP: failures across apps add up.
  await refused(v, { ...headersAt(clock.now, other), signature: 'y' }, /signature/, '10.0.0.1');
  await refused(v, { ...headersAt(clock.now, other), app_key: 'unknownunknown00' }, /unknown app_key/, '10.0.0.1');
  await refused(v, headersAt(clock.now, other), /too many/, '10.0.0.1', 429);
  clock.now += 61_000;
  await accept(v, headersAt(clock.now), '10.0.0.1');
});
