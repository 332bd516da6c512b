/**
 * Loopback fixtures for the prober tests: an HTTP target with one path per scenario, a callback
 * receiver that records what arrives, and a port nobody listens on.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Target {
  port: number;
  close(): Promise<void>;
}

/**
 * Paths: /ok 200 · /err 500 · /slow answers after 3 s · /vhost 200 only for Host good.example (else 404)
 * · /cookie 200 only with cookie session=abc (else 403) · /flaky/<id> fails every other request
 * · /failfirst/<id>/<k>/<interval> fails the first k requests of each round of <interval> s (500).
 */
export async function startTarget(): Promise<Target> {
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const parts = url.pathname.split('/').filter(Boolean);
    const send = (code: number) => {
      res.statusCode = code;
      res.end(String(code));
    };
    switch (parts[0]) {
      case 'ok':
        return send(200);
      case 'err':
        return send(500);
      case 'slow':
        return void setTimeout(() => send(200), 3000).unref();
      case 'vhost':
        return send(req.headers.host?.split(':')[0] === 'good.example' ? 200 : 404);
      case 'cookie':
        return send(/(^|;\s*)session=abc(;|$)/.test(req.headers.cookie ?? '') ? 200 : 403);
      case 'flaky': {
        const n = (counts.get(url.pathname) ?? 0) + 1;
        counts.set(url.pathname, n);
        return send(n % 2 === 1 ? 503 : 200);
      }
      case 'failfirst': {
        const [, id, k, interval] = parts;
        const round = Math.floor(Date.now() / (Number(interval) * 1000));
        const key = `${id}@${round}`;
        const n = (counts.get(key) ?? 0) + 1;
        counts.set(key, n);
        return send(n <= Number(k) ? 500 : 200);
      }
      default:
        return send(404);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** While true every request is answered 503 and counted in refused, not recorded. */
  failing: boolean;
  refused: number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const state = { failing: false, refused: 0 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (state.failing) {
        state.refused++;
        res.statusCode = 503;
        return void res.end('try later');
      }
      received.push({ path: req.url ?? '/', headers: req.headers, body, at: Date.now() });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    get failing() {
      return state.failing;
    },
    set failing(v: boolean) {
      state.failing = v;
    },
    get refused() {
      return state.refused;
    },
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A loopback port that was free a moment ago: connections to it are refused. */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Posts form fields like iplive's PHP clients did. */
export async function postForm(url: string, fields: Record<string, string | number>): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)]))).toString() });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/**
 * An HTTPS target with the test-only self-signed certificate in test/fixtures/tls (valid for 100 years,
 * CN good.example). A committed fixture rather than one made per run: `npm test` must need nothing
 * but Node and npm, and Node cannot issue X.509 certificates itself.
 */
export async function startHttpsTarget(): Promise<Target & { validTo: Date }> {
  const { readFileSync } = await import('node:fs');
  const https = await import('node:https');
  const { X509Certificate } = await import('node:crypto');
  const fixture = (name: string) => readFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url));
  const cert = fixture('cert.pem');
  const key = fixture('key.pem');
  const server = https.createServer({ cert, key }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    validTo: new Date(new X509Certificate(cert).validTo),
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
