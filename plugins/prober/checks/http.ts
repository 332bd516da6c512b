import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { CONN_ERROR, TIMEOUT, UP, type CheckSpec, type Timing } from '../schema.ts';

export interface AttemptOutcome {
  status: number;
  timing: Timing;
  error?: string;
  certExpires?: string;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

function expected(spec: CheckSpec, code: number): boolean {
  return spec.httpCode === null ? code >= 200 && code < 400 : code === spec.httpCode;
}

/**
 * One HTTP(S) attempt on a fresh connection (no keep-alive, so connect and TLS are measured every
 * time), redirects not followed, bounded by a real timer that aborts the socket.
 */
export function httpAttempt(spec: CheckSpec, ip: string): Promise<AttemptOutcome> {
  const secure = spec.protocol === 'https';
  const t0 = performance.now();
  const marks = { dns: 0, connect: 0, tls: 0, ttfb: 0 };
  const ac = new AbortController();
  const host = spec.domain || ip;
  const headers: Record<string, string> = { host: spec.port === (secure ? 443 : 80) ? host : `${host}:${spec.port}`, 'user-agent': 'outpost-prober', accept: '*/*' };
  if (spec.cookies) headers.cookie = spec.cookies;
  const opts: https.RequestOptions = {
    host: ip,
    port: spec.port,
    path: spec.path || '/',
    method: 'GET',
    headers,
    agent: false,
    signal: ac.signal,
  };
  if (secure) {
    // Monitoring reports reachability; certificate validity is recorded, not enforced.
    opts.rejectUnauthorized = false;
    if (spec.domain && !isIP(spec.domain)) opts.servername = spec.domain;
  }
  return new Promise((resolve) => {
    let done = false;
    let certExpires: string | undefined;
    const finish = (status: number, error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const total = performance.now() - t0;
      resolve({
        status,
        error,
        certExpires,
        timing: { dns: round1(marks.dns), connect: round1(marks.connect), tls: round1(marks.tls), ttfb: round1(marks.ttfb), total: round1(total) },
      });
      req.destroy();
    };
    const timer = setTimeout(() => {
      ac.abort();
      finish(TIMEOUT, `no answer within ${spec.timeout}s`);
    }, spec.timeout * 1000);
    const req = (secure ? https : http).request(opts, (res) => {
      marks.ttfb = performance.now() - t0;
      const code = res.statusCode ?? 0;
      res.on('data', () => {});
      res.on('end', () => finish(expected(spec, code) ? UP : code));
      res.on('error', (err) => finish(CONN_ERROR, err.message));
    });
    req.on('socket', (socket) => {
      socket.on('lookup', () => (marks.dns = performance.now() - t0));
      socket.on('connect', () => (marks.connect = performance.now() - t0 - marks.dns));
      if (secure) {
        socket.on('secureConnect', () => {
          marks.tls = performance.now() - t0 - marks.dns - marks.connect;
          const cert = (socket as TLSSocket).getPeerCertificate?.();
          if (cert?.valid_to) certExpires = new Date(cert.valid_to).toISOString();
        });
      }
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish(err.name === 'AbortError' ? TIMEOUT : CONN_ERROR, err.code ?? err.message));
    req.end();
  });
}
