/**
 * Plugin listeners (runtime/listen.ts) on real loopback sockets: bind errors named, connections ended
 * on close, nothing left listening after close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import WebSocket from 'ws';
import { createListenPort } from '../runtime/listen.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { execFileSync } from 'node:child_process';
import { ROOT, TestAgent, TestController } from './helpers/cluster.ts';

const port = createListenPort(createLog('test', 'silent'));

function tcpConnect(p: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(p, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with the error code of a connection attempt, or 'connected'. */
function connectOutcome(p: number): Promise<string> {
  return tcpConnect(p).then(
    (s) => {
      s.destroy();
      return 'connected';
    },
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
}

const closedBy = (s: Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

test('tcp: serves connections, names a busy port, and ends every connection on close', async () => {
  const seen: Socket[] = [];
  const l = await port.tcp('demo', { host: '127.0.0.1', port: 0 }, (s) => {
    seen.push(s);
    s.on('data', (d) => s.write(d));
  });
  const client = await tcpConnect(l.port);
  const echoed = new Promise<string>((resolve) => client.once('data', (d) => resolve(d.toString())));
  client.write('ping');
  assert.equal(await echoed, 'ping');

  await assert.rejects(port.tcp('demo', { host: '127.0.0.1', port: l.port }, () => {}), { message: `demo: cannot listen on 127.0.0.1:${l.port}: address already in use` });

  await l.close();
  await closedBy(client);
  assert.equal(seen.length, 1);
  assert.equal(await connectOutcome(l.port), 'ECONNREFUSED');
});

test('tcp: a client that resets the connection does not crash the host', async () => {
  const l = await port.tcp('demo', { host: '127.0.0.1', port: 0 }, (s) => {
    // Writes to a socket whose peer is gone: without a listener, its 'error' would be an uncaught exception.
    const timer = setInterval(() => s.write('x'.repeat(64 * 1024)), 1);
    s.once('close', () => clearInterval(timer));
  });
  const client = await tcpConnect(l.port);
  client.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await connectOutcome(l.port), 'connected');
  await l.close();
});

test('tcp: a connection handler that throws closes that connection only', async () => {
  let n = 0;
  const l = await port.tcp('demo', { host: '127.0.0.1', port: 0 }, () => {
    if (++n === 1) throw new Error('boom');
  });
  const first = await tcpConnect(l.port);
  await closedBy(first);
  const second = await tcpConnect(l.port);
  assert.equal(second.destroyed, false);
  await l.close();
  await closedBy(second);
});

test('http: hyper-express routes and WebSockets; a busy port is named; close ends keep-alive and WebSocket connections', async () => {
  const l = await port.http('demo', { host: '127.0.0.1', port: 0 }, (app) => {
    app.get('/hello', (_req, res) => {
      res.send('hi');
    });
    app.ws('/sub', {}, (ws) => ws.on('message', (m: string) => void ws.send(m)));
  });
  const res = await fetch(`http://127.0.0.1:${l.port}/hello`);
  assert.equal(await res.text(), 'hi');

  const ws = new WebSocket(`ws://127.0.0.1:${l.port}/sub`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const echo = new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))));
  ws.send('x');
  assert.equal(await echo, 'x');
  const wsClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));

  // A plain keep-alive HTTP connection left open by the client.
  const keep = await tcpConnect(l.port);
  const answered = new Promise<void>((resolve) => keep.once('data', () => resolve()));
  keep.write(`GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await answered;

  // uWS would share a port through SO_REUSEPORT; ours binds exclusively and says why it cannot.
  await assert.rejects(port.http('demo', { host: '127.0.0.1', port: l.port }, () => {}), { message: `demo: cannot listen on 127.0.0.1:${l.port}: address already in use` });
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const busy = (blocker.address() as { port: number }).port;
  await assert.rejects(port.http('demo', { host: '127.0.0.1', port: busy }, () => {}), { message: `demo: cannot listen on 127.0.0.1:${busy}: address already in use` });
  blocker.close();

  await l.close();
  await wsClosed;
  await closedBy(keep);
  assert.equal(await connectOutcome(l.port), 'ECONNREFUSED');
});

test('http: a setup that throws fails the listen with the plugin named, and leaves nothing bound', async () => {
  const probe = await port.tcp('probe', { host: '127.0.0.1', port: 0 }, () => {});
  const free = probe.port;
  await probe.close();
  await assert.rejects(
    port.http('demo', { host: '127.0.0.1', port: free }, () => {
      throw new Error('bad route');
    }),
    { message: `demo: setting up its HTTP listener on 127.0.0.1:${free} failed: bad route` },
  );
  assert.equal(await connectOutcome(free), 'ECONNREFUSED');
});

test('http: tls with a missing certificate says so', async () => {
  await assert.rejects(port.http('demo', { host: '127.0.0.1', port: 0, tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' } }, () => {}), {
    message: 'demo: cannot listen on 127.0.0.1:0: TLS certificate file /nonexistent/cert.pem is not readable (ENOENT)',
  });
});

test('http: tls serves HTTPS and WSS with the configured certificate', async () => {
  const dir = new URL('./fixtures/tls-loopback/', import.meta.url);
  const tls = { certFile: new URL('cert.pem', dir).pathname, keyFile: new URL('key.pem', dir).pathname };
  const ca = readFileSync(tls.certFile);
  const l = await port.http('demo', { host: '127.0.0.1', port: 0, tls }, (app) => {
    app.get('/hello', (_req, res) => {
      res.send('secure');
    });
    app.ws('/sub', {}, (ws) => ws.on('message', (m: string) => void ws.send(m)));
  });
  const body = await new Promise<string>((resolve, reject) => {
    httpsGet({ host: '127.0.0.1', port: l.port, path: '/hello', ca }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  assert.equal(body, 'secure');
  const ws = new WebSocket(`wss://127.0.0.1:${l.port}/sub`, { ca });
  const echo = new Promise<string>((resolve, reject) => {
    ws.once('message', (m) => resolve(String(m)));
    ws.once('error', reject);
  });
  ws.once('open', () => ws.send('over tls'));
  assert.equal(await echo, 'over tls');
  const wsClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  await l.close();
  await wsClosed;
});

/** Whether the uWebSockets.js native library is mapped into process pid. */
const mapsUws = (pid: number | 'self') => /uws_linux_[^/\s]*\.node/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));

test('uWS is mapped only once a plugin listens over HTTP', () => {
  const script = `
    import { readFileSync } from 'node:fs';
    import { createListenPort } from './runtime/listen.ts';
    import { createLog } from './plugins/sdk/log.ts';
    const uws = () => /uws_linux_[^/\\s]*\\.node/.test(readFileSync('/proc/self/maps', 'utf8'));
    const port = createListenPort(createLog('t', 'silent'));
    const seen = { imported: uws() };
    const tcp = await port.tcp('p', { host: '127.0.0.1', port: 0 }, () => {});
    seen.tcp = uws();
    const http = await port.http('p', { host: '127.0.0.1', port: 0 }, () => {});
    seen.http = uws();
    await tcp.close();
    await http.close();
    console.log(JSON.stringify(seen));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { imported: false, tcp: false, http: true });
});

test('an agent whose plugins do not listen over HTTP maps no uWS', async () => {
  const c = await TestController.start();
  try {
    const a = await TestAgent.start(c, { plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, prober: {} } });
    try {
      assert.equal(mapsUws(a.proc.child.pid!), false);
    } finally {
      await a.stop();
    }
  } finally {
    await c.stop();
  }
});
