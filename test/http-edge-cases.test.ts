/**
 * Raw-socket edge cases on the controller's HTTP server (hyper-express 6.17.4 on uWS 20.30; issue 9, B10):
 * every request gets a complete response or a clean close, never a half-written answer or a hang.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { TestController } from './helpers/cluster.ts';

let c: TestController;
before(async () => {
  c = await TestController.start({ config: { maxBodyBytes: 1024 * 1024, plugins: { 'server-stats': {}, prober: {} } } });
});
after(async () => c?.stop());

interface Exchange {
  text: string;
  /** How the server ended the connection: 'fin' (clean close), 'reset', or 'open' if we gave up first. */
  end: 'fin' | 'reset' | 'open';
}

/**
 * Writes data on a fresh connection and collects the answer until done(text) holds, the server closes, or
 * timeoutMs passes (a generous bound for a loaded machine, not a measure of speed).
 */
function exchange(data: string | Buffer, done: (text: string) => boolean, timeoutMs = 30_000): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = connect(c.port, '127.0.0.1');
    let text = '';
    let settled = false;
    const finish = (end: Exchange['end']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text, end });
    };
    const timer = setTimeout(() => finish('open'), timeoutMs);
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (done(text)) finish('open');
    });
    sock.on('end', () => finish('fin'));
    sock.on('error', () => finish('reset'));
    // A server closing early makes our remaining writes fail; what matters is what it answered.
    sock.write(data, () => undefined);
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
  rest: string;
}

/** The first complete HTTP/1.1 response in text (after any interim 1xx), or undefined while incomplete. */
function response(text: string): Parsed | undefined {
  let t = text;
  while (/^HTTP\/1\.1 1\d\d /.test(t) && t.includes('\r\n\r\n')) t = t.slice(t.indexOf('\r\n\r\n') + 4);
  const head = t.indexOf('\r\n\r\n');
  if (head < 0) return undefined;
  const [statusLine, ...lines] = t.slice(0, head).split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
  if (!m) return undefined;
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const length = Number(headers['content-length']);
  if (!Number.isInteger(length)) return undefined;
  const body = t.slice(head + 4, head + 4 + length);
  if (Buffer.byteLength(body, 'latin1') < length) return undefined;
  return { status: Number(m[1]), headers, body, rest: t.slice(head + 4 + length) };
}

const complete = (text: string) => response(text) !== undefined;
const TOO_BIG = 5 * 1024 * 1024;

test('a declared oversize body is refused with a complete 413 before the client sends it', async () => {
  // The client waits for our answer before sending (as with Expect: 100-continue): today it gets all of it.
  const r = await exchange(`POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${TOO_BIG}\r\n\r\n`, complete, 15_000);
  const res = response(r.text);
  assert.ok(res, `complete response expected, got ${JSON.stringify(r.text)} (${r.end})`);
  assert.equal(res.status, 413);
  assert.deepEqual(JSON.parse(res.body), { error: { status: 413, message: `body too large: ${TOO_BIG} bytes, limit 1048576` } });
});

test('with Expect: 100-continue, on a seed route and on an unknown path: 100 Continue (sent by uWS), then the whole answer', async () => {
  const seed = await exchange(`POST /deal HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${TOO_BIG}\r\n\r\n`, complete, 15_000);
  assert.match(seed.text, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
  const res = response(seed.text);
  assert.ok(res, JSON.stringify(seed.text));
  assert.equal(res.status, 413);
  assert.deepEqual(JSON.parse(res.body), { code: 1003, msg: `body too large: ${TOO_BIG} bytes, limit 1048576`, info: {} }, 'the iplive envelope of the route hit');
  const unknown = await exchange(`POST /no/such/route HTTP/1.1\r\nHost: x\r\nContent-Length: ${TOO_BIG}\r\n\r\n`, complete, 15_000);
  assert.equal(response(unknown.text)?.status, 404, JSON.stringify(unknown.text));
});

test('an oversize body sent in full is discarded and the connection serves the next request', async () => {
  const big = Buffer.concat([
    Buffer.from(`POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${TOO_BIG}\r\n\r\n`),
    Buffer.alloc(TOO_BIG, 0x61),
    Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
  ]);
  const r = await exchange(big, (t) => !!response(t) && complete(response(t)!.rest));
  const first = response(r.text);
  assert.equal(first?.status, 413, JSON.stringify(r.text.slice(0, 300)));
  const second = response(first!.rest);
  assert.equal(second?.status, 200, JSON.stringify(first!.rest));
  assert.deepEqual(JSON.parse(second!.body), { status: 'ok' });
});

test('HTTP/1.0, LF-only line endings, a missing Host: a complete error answer or a clean close, never a hang', async () => {
  // uWS 20.30 parses only HTTP/1.1 request lines ending in CRLF with a Host header; it hands nothing else to
  // JavaScript and closes such a connection when its 10 s idle timer fires (docs/operations.md, HTTP clients).
  const cases = {
    'HTTP/1.0': 'GET /healthz HTTP/1.0\r\n\r\n',
    'HTTP/1.0 with Host': 'GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n',
    'LF only': 'GET /healthz HTTP/1.1\nHost: x\n\n',
    'no Host': 'GET /healthz HTTP/1.1\r\n\r\n',
  };
  const results = await Promise.all(Object.values(cases).map((raw) => exchange(raw, complete)));
  for (const [i, name] of Object.keys(cases).entries()) {
    const r = results[i];
    const res = response(r.text);
    assert.ok(res ? res.status >= 400 : r.text === '', `${name}: a complete error response or nothing, got ${JSON.stringify(r.text)}`);
    assert.ok(res || r.end === 'fin', `${name}: closed cleanly, not left open or reset (${r.end})`);
  }
  // The server is unharmed.
  const ok = await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', complete);
  assert.equal(response(ok.text)?.status, 200);
});
