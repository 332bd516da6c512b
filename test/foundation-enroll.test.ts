/** Enrollment with join tokens, admin auth on the REST API, and who the link lets in. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { generateKeyPair, SignJWT } from 'jose';
import { TestController, TestAgent, until, http, sleep, stopProc } from './helpers/cluster.ts';

let c: TestController;
before(async () => {
  c = await TestController.start();
});
after(async () => {
  await c?.stop();
});

const enroll = (token: unknown, name = `n-${Math.random().toString(36).slice(2, 8)}`) => http('POST', `${c.url}/api/v1/enroll`, { body: { token, name } });

function assertRestError(r: { status: number; body: any }, status: number, message: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body?.error?.status, status);
  assert.match(r.body.error.message, message);
}

/** Opens the link with the given Authorization value; resolves with the HTTP status of a refused upgrade, or 101. */
function linkStatus(authorization?: string): Promise<number> {
  const ws = new WebSocket(c.url.replace(/^http/, 'ws') + '/api/v1/link', { headers: authorization ? { authorization } : {}, handshakeTimeout: 10_000 });
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (err) => reject(err));
  });
}

test('enrollment happy path: a token with 2 uses enrolls two nodes with distinct ids and signed credentials', async () => {
  const token = await c.joinToken({ uses: 2, labels: { zone: 'eu' } });
  const a = await enroll(token, 'happy-a');
  const b = await enroll(token, 'happy-b');
  assert.equal(a.status, 201, a.text);
  assert.equal(b.status, 201, b.text);
  assert.match(a.body.nodeId, /^n_[0-9a-f]{12}$/);
  assert.notEqual(a.body.nodeId, b.body.nodeId);
  // An EdDSA JWT whose subject is the node.
  const [header, payload] = a.body.credential.split('.').slice(0, 2).map((p: string) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  assert.equal(header.alg, 'EdDSA');
  assert.equal(payload.sub, a.body.nodeId);
  const node = await c.node(a.body.nodeId);
  assert.equal(node.name, 'happy-a');
  assert.equal(node.labels.zone, 'eu');
  const listed = (await c.api('GET', '/api/v1/tokens')).body.tokens.find((t: any) => token.includes(t.id));
  assert.equal(listed.state, 'used-up');
  assert.equal(listed.uses, 2);
});

test('malformed join token: 401 naming the defect', async () => {
  for (const bad of ['nope', 'opj_zz.short', `opj_${'0'.repeat(12)}`, '']) {
    const r = await enroll(bad);
    if (bad === '') assertRestError(r, 400, /token is required/);
    else assertRestError(r, 401, /join token is malformed/);
  }
  assertRestError(await enroll(42), 400, /token is required/);
});

test('unknown join token (well-formed, never issued, or wrong secret): 401', async () => {
  assertRestError(await enroll(`opj_${'a'.repeat(12)}.${'b'.repeat(32)}`), 401, /join token is not valid/);
  const real = await c.joinToken();
  const wrongSecret = real.slice(0, real.indexOf('.') + 1) + 'x'.repeat(32);
  assertRestError(await enroll(wrongSecret), 401, /join token is not valid/);
  // The real one still works: a wrong guess does not burn a use.
  assert.equal((await enroll(real)).status, 201);
});

test('expired join token: 401 "expired"', async () => {
  // The shortest lifetime is a minute: the token's expiry is moved into the past on disk, controller stopped.
  const token = await c.joinToken({ ttl: '1m' });
  await stopProc(c.proc);
  const file = join(c.dataDir, 'tokens.json');
  const data = JSON.parse(await readFile(file, 'utf8'));
  for (const t of Object.values(data.tokens) as Array<{ expiresAt: number }>) t.expiresAt = Date.now() - 1000;
  await writeFile(file, JSON.stringify(data));
  await c.restart();
  assertRestError(await enroll(token), 401, /join token is expired/);
});

test('token lifetimes are bounded: one minute to one year, with a message naming the bounds', async () => {
  for (const ttl of [0.0001, 59, '59s', '0.5m', '366d', 315_360_001, '3650d']) {
    assertRestError(await c.api('POST', '/api/v1/tokens', { ttl }), 400, /ttl: must be from 1m to 365d \(one minute to one year\), got/);
  }
  for (const [ttl, ms] of [[60, 60_000], ['1m', 60_000], ['365d', 365 * 86_400_000], ['24h', 86_400_000]] as const) {
    const r = await c.api('POST', '/api/v1/tokens', { ttl });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.expiresAt - r.body.createdAt, ms);
  }
});

test('parallel enrollments under one name: one node, 409 for the others, and only the winner spends a use', async () => {
  for (let round = 0; round < 3; round++) {
    const created = await c.api('POST', '/api/v1/tokens', { ttl: '10m', uses: 5 });
    const name = `same-name-${round}`;
    const results = await Promise.all(Array.from({ length: 5 }, () => enroll(created.body.token, name)));
    assert.equal(results.filter((r) => r.status === 201).length, 1, results.map((r) => `${r.status} ${r.text}`).join('\n'));
    for (const r of results.filter((x) => x.status !== 201)) assertRestError(r, 409, new RegExp(`a node named "${name}" is`));
    const nodes = (await c.api('GET', '/api/v1/nodes')).body.nodes.filter((n: any) => n.name === name);
    assert.equal(nodes.length, 1);
    const token = (await c.api('GET', '/api/v1/tokens')).body.tokens.find((t: any) => t.id === created.body.id);
    assert.equal(token.usesLeft, 4);
  }
});

test('revoked join token: 401 "revoked"; revoking an unknown id is a 404', async () => {
  const created = await c.api('POST', '/api/v1/tokens', { ttl: '10m', uses: 5 });
  assert.equal(created.status, 201);
  const del = await c.api('DELETE', `/api/v1/tokens/${created.body.id}`);
  assert.equal(del.status, 200);
  assertRestError(await enroll(created.body.token), 401, /join token is revoked/);
  assertRestError(await c.api('DELETE', '/api/v1/tokens/ffffffffffff'), 404, /token ffffffffffff not found/);
});

test('used-up join token: the second use of a one-use token is refused', async () => {
  const token = await c.joinToken({ uses: 1 });
  assert.equal((await enroll(token)).status, 201);
  assertRestError(await enroll(token), 401, /join token is used-up/);
});

test('concurrent enrollments never exceed a token\'s uses', async () => {
  const token = await c.joinToken({ uses: 3 });
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => enroll(token, `race-${i}`)));
  assert.equal(results.filter((r) => r.status === 201).length, 3);
  for (const r of results.filter((x) => x.status !== 201)) assertRestError(r, 401, /join token is used-up/);
  const names = new Set((await c.api('GET', '/api/v1/nodes')).body.nodes.map((n: any) => n.name));
  assert.equal([...names].filter((n) => String(n).startsWith('race-')).length, 3);
});

test('token list never shows a secret or its hash', async () => {
  const token = await c.joinToken();
  const secret = token.slice(token.indexOf('.') + 1);
  const r = await c.api('GET', '/api/v1/tokens');
  assert.equal(r.status, 200);
  assert.ok(r.body.tokens.length > 0);
  assert.ok(!r.text.includes(secret), 'secret listed');
  for (const t of r.body.tokens) {
    assert.deepEqual(Object.keys(t).filter((k) => /hash|secret|token/i.test(k)), []);
    assert.match(t.state, /^(active|expired|used-up|revoked)$/);
  }
});

test('admin API: missing, wrong or malformed admin token gets 401 in the REST envelope', async () => {
  for (const path of ['/api/v1/nodes', '/api/v1/tokens', '/api/v1/status', '/api/v1/events', '/api/v1/plugins']) {
    assertRestError(await http('GET', c.url + path), 401, /admin token required/);
    assertRestError(await c.api('GET', path, undefined, 'opa_wrong'), 401, /admin token required/);
    assertRestError(await http('GET', c.url + path, { headers: { authorization: `Basic ${c.adminToken}` } }), 401, /admin token required/);
  }
  assertRestError(await http('POST', `${c.url}/api/v1/tokens`, { body: { ttl: '1h' } }), 401, /admin token required/);
  assertRestError(await c.api('DELETE', '/api/v1/nodes/x', undefined, 'nope'), 401, /admin token required/);
});

test('link: no credential, garbage, or a JWT signed by another key is refused with HTTP 401', async () => {
  const r = await enroll(await c.joinToken(), 'link-target');
  const nodeId = r.body.nodeId as string;
  assert.equal(await linkStatus(), 401);
  assert.equal(await linkStatus('Bearer garbage'), 401);
  assert.equal(await linkStatus('Bearer a.b.c'), 401);
  // Same claims as a real credential, but signed by a key the controller never issued.
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const real = JSON.parse(Buffer.from(r.body.credential.split('.')[1], 'base64url').toString());
  const forged = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setSubject(nodeId).setIssuer(real.iss).setAudience(real.aud).setJti(real.jti).setIssuedAt().sign(privateKey);
  assert.equal(await linkStatus(`Bearer ${forged}`), 401);
  // alg=none with the real claims.
  const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${r.body.credential.split('.')[1]}.`;
  assert.equal(await linkStatus(`Bearer ${none}`), 401);
  // The genuine credential gets through.
  assert.equal(await linkStatus(`Bearer ${r.body.credential}`), 101);
  // The controller survives and logs no credential.
  assert.equal((await http('GET', `${c.url}/healthz`)).status, 200);
  assert.ok(!c.proc.output().includes(forged));
  assert.ok(!c.proc.output().includes(r.body.credential));
});

test('a deleted node is disconnected and its agent can no longer connect', async () => {
  const a = await TestAgent.start(c, { name: 'doomed' });
  try {
    await until('node up', async () => (await c.node(a.nodeId))?.state === 'up');
    const credential = JSON.parse(await readFile(join(a.dataDir, 'state.json'), 'utf8')).credential as string;
    const del = await c.api('DELETE', `/api/v1/nodes/${a.nodeId}`);
    assert.equal(del.status, 200);
    assert.equal(del.body.deleted, a.nodeId);
    assert.equal((await c.api('GET', `/api/v1/nodes/${a.nodeId}`)).status, 404);
    await until('agent link down', async () => (await a.local('GET', '/v1/monitor')).body?.link !== 'connected', 10_000);
    assert.equal(await linkStatus(`Bearer ${credential}`), 401);
    // It keeps trying with backoff but never gets back in.
    await sleep(1500);
    assert.equal((await a.local('GET', '/v1/monitor')).body.link === 'connected', false);
    const status = await c.api('GET', '/api/v1/status');
    assert.equal(status.body.link.connected, 0);
    assert.equal(a.proc.child.exitCode, null, 'the agent process keeps running');
  } finally {
    await a.stop();
  }
});

test('a second node cannot enroll under a name already taken, and the refusal costs no token use', async () => {
  const c = await TestController.start();
  try {
    const token = await c.joinToken({ uses: 2 });
    const first = await c.api('POST', '/api/v1/enroll', { token, name: 'twin' }, undefined);
    assert.equal(first.status, 201);
    const second = await c.api('POST', '/api/v1/enroll', { token, name: 'twin' }, undefined);
    assert.equal(second.status, 409);
    assert.match(second.body.error.message, /"twin" is already enrolled/);
    const other = await c.api('POST', '/api/v1/enroll', { token, name: 'twin-2' }, undefined);
    assert.equal(other.status, 201, 'the refused attempt did not use up the token');
  } finally {
    await c.stop();
  }
});
