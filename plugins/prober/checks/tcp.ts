import net from 'node:net';
import { CONN_ERROR, TIMEOUT, UP, type CheckSpec } from '../schema.ts';
import type { AttemptOutcome } from './http.ts';

/** A TCP connect; up once the handshake completes. */
export function tcpAttempt(spec: CheckSpec, ip: string): Promise<AttemptOutcome> {
  const t0 = performance.now();
  let dns = 0;
  return new Promise((resolve) => {
    let done = false;
    const socket = net.connect({ host: ip, port: spec.port });
    const finish = (status: number, error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const total = Math.round((performance.now() - t0) * 10) / 10;
      resolve({ status, error, timing: { dns: Math.round(dns * 10) / 10, connect: Math.round((total - dns) * 10) / 10, tls: 0, ttfb: 0, total } });
    };
    const timer = setTimeout(() => finish(TIMEOUT, `no connection within ${spec.timeout}s`), spec.timeout * 1000);
    socket.on('lookup', () => (dns = performance.now() - t0));
    socket.on('connect', () => finish(UP));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(CONN_ERROR, err.code ?? err.message));
  });
}
