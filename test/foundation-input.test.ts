/** Bad input everywhere gets the API's own envelope and never stops a process; secrets stay out of every output. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestController, TestAgent, until, http, run, tempDir } from './helpers/cluster.ts';
import { fakeSample, openRawLink, sampleReport } from './helpers/raw-link.ts';

let c: TestController;
let a: TestAgent;
before(async () => {
  // Heartbeats slower than the harness default: these tests check node state, which must not flap on a loaded machine.
  c = await TestController.start({ config: { heartbeat: { intervalMs: 1000, downAfter: 3, upAfter: 2 } } });
  a = await TestAgent.start(c, { name: 'input-a', plugins: { 'server-stats': { interval: 1, diskInterval: 5 } } });
  await until('node up', async () => (await c.node(a.nodeId))?.state === 'up');
});
after(async () => {
  await a?.stop();
  await c?.stop();
});

function assertRestError(r: { status: number; body: any; text: string }, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(Object.keys(r.body ?? {}), ['error'], r.text);
  assert.equal(r.body.error.status, status);
  assert.match(r.body.error.message, message);
  assert.doesNotMatch(r.text, /\bat .+\.ts:\d+/, 'no stack trace');
}

function assertWebsoft9Error(r: { status: number; body: any; text: string }, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.code, '0', r.text);
  assert.deepEqual(r.body.data, {});
  assert.match(r.body.message, message);
}

const post = (path: string, raw: string, type = 'application/json', token: string | undefined = c.adminToken) =>
  http('POST', c.url + path, { raw, token, headers: { 'content-type': type } });

async function assertAlive(): Promise<void> {
  assert.equal((await http('GET', `${c.url}/healthz`)).status, 200);
  assert.equal(c.proc.child.exitCode, null);
  assert.equal(c.proc.child.signalCode, null);
}

test('REST: malformed JSON, wrong types and unknown routes get {error:{status,message}} naming the problem', async () => {
  assertRestError(await post('/api/v1/tokens', '{"ttl": "1h",'), 400, /malformed JSON/);
  assertRestError(await post('/api/v1/tokens', '[1, 2]'), 400, /JSON object/);
  assertRestError(await post('/api/v1/tokens', 'null'), 400, /JSON object/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { ttl: {} }), 400, /ttl: must be a duration/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { ttl: true }), 400, /ttl: must be a duration/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { uses: true }), 400, /uses/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { uses: [3] }), 400, /uses/);
  assert.equal((await c.api('POST', '/api/v1/tokens', { uses: '3', ttl: 60 })).body.usesLeft, 3);
  assertRestError(await c.api('POST', '/api/v1/tokens', { ttl: 'forever' }), 400, /ttl/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { ttl: -5 }), 400, /ttl|duration/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { uses: 'many' }), 400, /uses/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { uses: 1.5 }), 400, /uses/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { labels: [1] }), 400, /labels/);
  assertRestError(await c.api('POST', '/api/v1/tokens', { labels: { zone: 7 } }), 400, /labels/);
  assertRestError(await post('/api/v1/enroll', '{"token": 5}', 'application/json', undefined), 400, /token/);
  assertRestError(await http('POST', `${c.url}/api/v1/enroll`, { body: { token: await c.joinToken(), name: '../../etc/passwd' } }), 400, /name/);
  assertRestError(await http('POST', `${c.url}/api/v1/enroll`, { body: { token: 'opj_x', labels: 'novalue' } }), 400, /labels/);
  assertRestError(await c.api('GET', '/api/v1/events?limit=lots'), 400, /limit/);
  assertRestError(await c.api('GET', '/api/v1/deliveries?state=bogus'), 400, /state/);
  assertRestError(await c.api('GET', '/api/v1/nodes/does-not-exist'), 404, /does-not-exist/);
  assertRestError(await c.api('DELETE', '/api/v1/nodes/does-not-exist'), 404, /does-not-exist/);
  assertRestError(await c.api('GET', '/api/v1/no/such/route'), 404, /no route/);
  assertRestError(await a.local('GET', '/no/such/route'), 404, /no route/);
  await assertAlive();
});

test('oversized bodies (2 MB to 20 MB, limit 1 MB) get 413 in the envelope of the API hit, declared or chunked', async () => {
  const big = JSON.stringify({ ttl: '1h', pad: 'x'.repeat(2 * 1024 * 1024) });
  assertRestError(await post('/api/v1/tokens', big), 413, /too large/);
  assertRestError(await post('/api/v1/enroll', big, 'application/json', undefined), 413, /too large/);
  assertWebsoft9Error(await post('/searchServer', big), 413, /too large/);
  assertWebsoft9Error(await post('/searchServer', `node=${'x'.repeat(2 * 1024 * 1024)}`, 'application/x-www-form-urlencoded'), 413, /too large/);
  // Without a Content-Length the server has to count as it reads.
  const chunked = await fetch(`${c.url}/api/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' },
    body: new ReadableStream({
      start(ctrl) {
        for (let i = 0; i < 4; i++) ctrl.enqueue(new TextEncoder().encode('x'.repeat(512 * 1024)));
        ctrl.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  assert.equal(chunked.status, 413);
  assert.match(((await chunked.json()) as any).error.message, /too large/);
  // Far past any server-level cap (20 MB declared, 12 MB chunked): still the envelope, never a bare reset.
  assertWebsoft9Error(await post('/searchServer', Buffer.alloc(20 * 1024 * 1024, 0x61).toString()), 413, /too large/);
  const hugeChunked = await fetch(`${c.url}/searchServer`, {
    method: 'POST',
    headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' },
    body: new ReadableStream({
      start(ctrl) {
        for (let i = 0; i < 12; i++) ctrl.enqueue(new Uint8Array(1024 * 1024).fill(0x61));
        ctrl.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  assert.equal(hugeChunked.status, 413);
  assert.match(((await hugeChunked.json()) as any).message, /too large/);
  await assertAlive();
  // Still serving normal requests on fresh connections.
  assert.equal((await c.api('GET', '/api/v1/nodes')).status, 200);
});

test('link: a malformed message closes that connection with a protocol code; the controller stays up', async () => {
  const r = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: await c.joinToken(), name: 'proto-test' } });
  const closeCode = async (payload: string) => {
    const link = await openRawLink(c.url, r.body.credential);
    link.send(payload);
    return link.closed;
  };
  assert.equal(await closeCode('not json'), 4400);
  assert.equal(await closeCode(JSON.stringify({ t: 'report', seq: -1, plugin: 'x', type: 'y', ts: 1 })), 4400);
  assert.equal(await closeCode(JSON.stringify({ t: 'hello', nodeId: 'n_someoneelse', version: '1', plugins: [], labels: {}, address: '' })), 4400);
  await assertAlive();
  assert.equal((await c.node(a.nodeId)).state, 'up');
});

test('a malformed server-stats report is refused; /metrics, /searchServer and the stats of other nodes keep working', async () => {
  const r = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: await c.joinToken(), name: 'bad-reporter' } });
  const link = await openRawLink(c.url, r.body.credential);
  await link.hello(r.body.nodeId);
  const t0 = Date.now();
  const bad = [{}, { ts: t0, cpu: 'high' }, { ...fakeSample(t0 + 1), cpu: { percent: 500, cores: 1 } }, { ...fakeSample(t0 + 2), memory: null }, null, 'sample'];
  bad.forEach((data, i) => link.send(sampleReport(i + 1, t0, data)));
  // Acknowledged (so never replayed forever) but not applied.
  await until('bad reports acknowledged', () => link.acked() === bad.length);
  link.ws.close();
  const metrics = await http('GET', `${c.url}/metrics`);
  assert.equal(metrics.status, 200, metrics.text);
  assert.ok(!metrics.text.includes(`node_id="${r.body.nodeId}"} 500`));
  assert.equal((await c.api('GET', '/searchServer?node=input-a')).body.code, '1');
  const own = await c.api('GET', `/searchServer?node=bad-reporter`);
  assertWebsoft9Error(own, 404, /bad-reporter/);
  assert.equal((await c.api('GET', `/api/v1/nodes/${r.body.nodeId}/stats`)).body.history.length, 0);
  assert.ok((await http('GET', `${c.url}/`)).status < 500);
  await assertAlive();
  assert.equal((await c.api('DELETE', `/api/v1/nodes/${r.body.nodeId}`)).status, 200);
});

/** Runs the CLI and expects it to fail: non-zero exit, each message in its output, no stack trace. */
async function assertFails(args: string[], ...messages: RegExp[]): Promise<void> {
  const p = run(args);
  const code = await p.exited;
  assert.notEqual(code, 0, p.output());
  for (const m of messages) assert.match(p.output(), m);
  assert.doesNotMatch(p.output(), /^\s+at /m, 'no stack trace');
}

test('a controller config with a bad value exits non-zero naming the field', async () => {
  const dir = await tempDir();
  const cases: Array<[Record<string, unknown> | string, RegExp]> = [
    [{ port: 'abc' }, /port/],
    [{ heartbeat: { intervalMs: 5 } }, /heartbeat\.intervalMs/],
    [{ prot: 7070 }, /prot/],
    ['{ not json', /not valid JSON/],
  ];
  // In parallel: each is a process start, the slow part.
  await Promise.all([
    ...cases.map(async ([config, message], i) => {
      const file = join(dir, `bad-${i}.json`);
      await writeFile(file, typeof config === 'string' ? config : JSON.stringify({ dataDir: join(dir, 'data'), ...config }));
      await assertFails(['controller', '--config', file], message, /^outpost: /m);
    }),
    assertFails(['controller', '--config', join(dir, 'missing.json')], /cannot read controller config/),
  ]);
});

test('an agent that has not joined, or has a bad config, or a bad join token, exits non-zero with a clear message', async () => {
  const dir = await tempDir();
  const config = async (name: string, body: Record<string, unknown>) => {
    const file = join(dir, `${name}.json`);
    await writeFile(file, JSON.stringify({ dataDir: join(dir, name), host: '127.0.0.1', port: 0, ...body }));
    return file;
  };
  await Promise.all([
    assertFails(['agent', '--config', await config('fresh', {})], /has not joined a controller yet.*outpost agent join/),
    assertFails(['agent', '--config', await config('bad', { port: 70000, name: 'bad name!' })], /port/, /name/),
    assertFails(['agent', 'join', '--config', await config('j1', {}), '--controller', c.url, '--token', 'garbage'], /join token is malformed/),
    assertFails(['agent', 'join', '--config', await config('j2', {}), '--controller', c.url, '--token', `opj_${'a'.repeat(12)}.${'b'.repeat(32)}`], /join token is not valid/),
    assertFails(['agent', 'join', '--config', await config('j3', {}), '--controller', 'http://127.0.0.1:1', '--token', 'opj_x'], /cannot reach controller/),
  ]);
  await assertAlive();
});

test('secrets: the admin token is printed once at first start and never again, nor in metrics, REST or logs', async () => {
  // Last in the file: it restarts the shared controller, whose output by now holds every bad request above.
  const first = c.proc.output();
  assert.equal(first.split(c.adminToken).length - 1, 1, 'printed exactly once at first start');
  assert.match(first, /Admin token \(shown once/);

  // Failed attempts carry would-be secrets; none of them may be logged.
  const joinToken = await c.joinToken();
  const enrolled = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: joinToken, name: 'secrets-b' } });
  const reused = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: joinToken, name: 'secrets-c' } });
  assert.equal(reused.status, 401);
  await http('GET', `${c.url}/api/v1/nodes`, { token: 'opa_guessed_admin_token_value' });
  await c.restart('SIGTERM');
  await until('agent back', async () => (await c.node(a.nodeId))?.connected);
  const credential = JSON.parse(await readFile(join(a.dataDir, 'state.json'), 'utf8')).credential as string;

  const bodies: string[] = [];
  for (const path of ['/api/v1/nodes', `/api/v1/nodes/${a.nodeId}`, '/api/v1/tokens', '/api/v1/status', '/api/v1/plugins', '/api/v1/events?limit=1000', '/api/v1/plugins/server-stats/config', '/api/v1/webhooks', '/api/v1/deliveries', '/searchServer?node=input-a', `/api/v1/nodes/${a.nodeId}/stats`]) {
    const r = await c.api('GET', path);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    bodies.push(r.text);
  }
  for (const path of ['/metrics', '/healthz', '/readyz', '/']) bodies.push((await http('GET', c.url + path)).text);
  bodies.push((await a.local('GET', '/metrics')).text, (await a.local('GET', '/v1/monitor')).text);
  const secrets = { 'admin token': c.adminToken, 'agent credential': credential, 'enrolled credential': enrolled.body.credential, 'join token': joinToken.split('.')[1], 'guessed admin token': 'opa_guessed_admin_token_value' };
  for (const [what, secret] of Object.entries(secrets)) {
    for (const b of bodies) assert.ok(!b.includes(secret), `${what} in a response`);
    assert.ok(!c.proc.output().includes(secret), `${what} in controller output after restart`);
    assert.ok(!a.proc.output().includes(secret), `${what} in agent output`);
  }
  assert.equal(first.split(joinToken.split('.')[1]).length - 1, 0, 'join token in first-run controller output');
  assert.equal(first.split(enrolled.body.credential).length - 1, 0);

  // Files holding secrets are private to the owner.
  const mode = async (f: string) => (await stat(f)).mode & 0o777;
  assert.equal(await mode(join(a.dataDir, 'state.json')), 0o600);
  assert.equal(await mode(join(c.dataDir, 'controller.json')), 0o600);
  assert.equal(await mode(join(c.dataDir, 'tokens.json')), 0o600);
  assert.equal(await mode(c.dataDir), 0o700);
  assert.equal(await mode(a.dataDir), 0o700);
  // The admin token is stored hashed, never in clear.
  assert.ok(!(await readFile(join(c.dataDir, 'controller.json'), 'utf8')).includes(c.adminToken));
});
