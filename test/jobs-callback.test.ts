import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyOutpostSignature } from '../plugins/sdk/signature.ts';
import { performCallback, type CallbackJob } from '../plugins/jobs/callback.ts';

const SECRET = 'pOKCTaHwMZaKPk3lfbVYfW07NuFjMAXX';
const APP = { appKey: 'E3F5l1uKFcXUe1gd', appName: '帅的批爆1' };

interface Seen {
  path: string;
  method: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** The connection closed before this receiver answered (the sender aborted). */
  abandoned: boolean;
}

const seen: Seen[] = [];
let server: Server;
let base = '';
const arrived = new Map<string, () => void>();

/** Each path is one receiver behaviour. */
function answer(s: Seen, res: import('node:http').ServerResponse) {
  switch (s.path) {
    case '/ok':
      return res.end('success');
    case '/ok-padded':
      return res.writeHead(201).end('  success\n');
    case '/ok-word':
      return res.end('ok');
    case '/empty':
      return res.end();
    case '/fail':
      return res.writeHead(500).end('boom\n  at line 3');
    case '/success-but-404':
      return res.writeHead(404).end('success');
    case '/redirect':
      return res.writeHead(302, { location: `${base}/ok` }).end();
    case '/big':
      return res.end('x'.repeat(1 << 20));
    case '/slow':
    case '/cancel-me':
      // Never answers: only the sender's abort ends this request.
      return;
    case '/half-body':
      res.writeHead(200);
      return res.write('succ');
  }
  res.writeHead(404).end('no such receiver');
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { path: req.url!, method: req.method!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), abandoned: false };
      seen.push(s);
      res.on('close', () => {
        if (!res.writableFinished) s.abandoned = true;
        arrived.get(`closed ${s.path}`)?.();
      });
      answer(s, res);
      arrived.get(s.path)?.();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const job = (path: string, extra: Partial<CallbackJob> = {}): CallbackJob => ({ taskId: 81, n: 1, node: 'edge-1', linkUrl: `${base}${path}`, content: '{"order":12345678901234567890,"items":[1.50,"x"]}', timeoutMs: 5000, ...APP, secretKey: SECRET, ...extra });
const waitFor = (key: string) => new Promise<void>((r) => arrived.set(key, r));
const last = () => seen.at(-1)!;

/** What a Serendipity receiver checks, written out from the PHP (hash_hmac + base64_encode), not from our signer. */
function serendipityReceiverAccepts(h: IncomingMessage['headers'], secret: string, appName: string): boolean {
  const str = (k: string) => String(h[k] ?? '');
  const hex = createHmac('sha256', secret).update(str('timestamps') + str('nonce') + str('payload')).digest('hex');
  return (
    Buffer.from(hex).toString('base64') === str('signature') &&
    str('payload') === createHash('md5').update(appName).digest('hex') &&
    /^[A-Za-z0-9]{16}$/.test(str('nonce')) &&
    Math.abs(Number(str('timestamps')) - Date.now() / 1000) < 60
  );
}

test('success: POST {"data": content} byte for byte, with every header a Serendipity receiver and an Outpost receiver check', async () => {
  const r = await performCallback(job('/ok'));
  assert.equal(r.ok, true);
  assert.equal(r.statusCode, 200);
  assert.equal(r.error, null);
  assert.equal(r.n, 1);
  assert.equal(r.node, 'edge-1');
  const s = last();
  assert.equal(s.method, 'POST');
  assert.equal(s.body, '{"data":{"order":12345678901234567890,"items":[1.50,"x"]}}');
  assert.equal(s.headers['content-type'], 'application/json');
  assert.equal(s.headers.app_key, APP.appKey);
  assert.equal(s.headers.payload, '57bcd60eefcac9701fd2407080a5a7b0');
  assert.ok(serendipityReceiverAccepts(s.headers, SECRET, APP.appName), JSON.stringify(s.headers));
  assert.equal(serendipityReceiverAccepts(s.headers, 'another-secret-another-secret-00', APP.appName), false);
  assert.equal(s.headers['x-outpost-task'], '81');
  assert.equal(s.headers['x-outpost-attempt'], '1');
  const sig = String(s.headers['x-outpost-signature']);
  assert.ok(verifyOutpostSignature(SECRET, s.body, sig));
  assert.ok(!verifyOutpostSignature(SECRET, s.body.replace('1.50', '1.5'), sig), 'the Outpost signature binds the body');
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig)!;
  assert.equal(t, s.headers.timestamps);
  assert.equal(v1, createHmac('sha256', SECRET).update(`${t}.${s.body}`).digest('hex'));
});

test('every attempt has a fresh nonce and its own attempt number', async () => {
  await performCallback(job('/ok', { n: 2 }));
  const a = last();
  await performCallback(job('/ok', { n: 3 }));
  const b = last();
  assert.notEqual(a.headers.nonce, b.headers.nonce);
  assert.deepEqual([a.headers['x-outpost-attempt'], b.headers['x-outpost-attempt']], ['2', '3']);
});

test('success is a 2xx with body "success" after trimming; anything else fails with what was answered', async () => {
  assert.equal((await performCallback(job('/ok-padded'))).ok, true);
  const cases: Array<[string, number, RegExp]> = [
    ['/ok-word', 200, /^HTTP 200 but the body is "ok", not "success"$/],
    ['/empty', 200, /^HTTP 200 but the body is empty, not "success"$/],
    ['/fail', 500, /^HTTP 500: "boom at line 3"$/],
    ['/success-but-404', 404, /^HTTP 404: "success"$/],
    ['/big', 200, /^HTTP 200 but the body is "x{120}…", not "success"$/],
  ];
  for (const [path, status, re] of cases) {
    const r = await performCallback(job(path));
    assert.equal(r.ok, false, path);
    assert.equal(r.statusCode, status, path);
    assert.match(r.error!, re, path);
  }
});

test('redirects are not followed', async () => {
  const before = seen.length;
  const r = await performCallback(job('/redirect'));
  assert.equal(r.ok, false);
  assert.equal(r.statusCode, 302);
  assert.match(r.error!, /^HTTP 302: redirects are not followed$/);
  assert.deepEqual(seen.slice(before).map((s) => s.path), ['/redirect'], 'the Location was never requested');
});

test('the deadline aborts the request for real: the receiver sees the connection close', async () => {
  const closed = waitFor('closed /slow');
  const r = await performCallback(job('/slow', { timeoutMs: 300 }));
  assert.equal(r.ok, false);
  assert.equal(r.statusCode, null);
  assert.equal(r.error, 'timed out after 300 ms');
  await closed;
  assert.equal(last().abandoned, true);
});

test('a body that stalls past the deadline is a timeout too', async () => {
  const r = await performCallback(job('/half-body', { timeoutMs: 300 }));
  assert.equal(r.error, 'timed out after 300 ms');
});

test('cancel: an external AbortSignal aborts the attempt in flight', async () => {
  const ctl = new AbortController();
  const there = waitFor('/cancel-me');
  const closed = waitFor('closed /cancel-me');
  const p = performCallback(job('/cancel-me', { timeoutMs: 60_000 }), { signal: ctl.signal });
  await there;
  ctl.abort();
  const r = await p;
  assert.equal(r.ok, false);
  assert.equal(r.error, 'cancelled');
  await closed;
  assert.equal(last().abandoned, true);
  const already = await performCallback(job('/ok'), { signal: ctl.signal });
  assert.equal(already.error, 'cancelled before it started');
});

test('network errors fail the attempt and never carry the secret', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const r = await performCallback({ ...job('/'), linkUrl: `http://127.0.0.1:${port}/cb` });
  assert.equal(r.ok, false);
  assert.match(r.error!, /^network error: .*ECONNREFUSED/);
  const all = JSON.stringify(r);
  assert.ok(!all.includes(SECRET));
});
