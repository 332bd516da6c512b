/**
 * A loopback webhook receiver for tests: records every request (headers, body, whether its
 * X-Outpost-Signature verifies), and can be told to fail, to hold requests unanswered (a slow
 * receiver), or to go down and come back on the same port.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyOutpostSignature } from '../../plugins/sdk/signature.ts';
import { until } from './cluster.ts';

export interface Received {
  /** X-Outpost-Delivery */
  id: string;
  /** X-Outpost-Event */
  event: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
  /** Whether X-Outpost-Signature verified against the receiver's secret (undefined without one). */
  signatureOk: boolean | undefined;
  /** HTTP status this receiver answered (0 while held). */
  status: number;
  at: number;
}

export class Receiver {
  readonly requests: Received[] = [];
  port = 0;
  private server: Server | undefined;
  private failLeft = 0;
  private failStatus = 500;
  private holding = false;
  private readonly held: Array<{ res: ServerResponse; rec: Received }> = [];

  private constructor(private readonly secret: string | undefined) {}

  static async start(opts: { secret?: string } = {}): Promise<Receiver> {
    const r = new Receiver(opts.secret);
    await r.up();
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** The next n requests get `status` (Infinity: until told otherwise with failNext(0)). */
  failNext(n: number, status = 500): void {
    this.failLeft = n;
    this.failStatus = status;
  }

  /** Requests are recorded but left unanswered until release(): a receiver as slow as it gets. */
  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const { res, rec } of this.held.splice(0)) this.answer(res, rec, 200);
  }

  heldCount(): number {
    return this.held.length;
  }

  /** Listens (again, on the same port after down()). */
  async up(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const sig = req.headers['x-outpost-signature'];
        const rec: Received = {
          id: String(req.headers['x-outpost-delivery'] ?? ''),
          event: String(req.headers['x-outpost-event'] ?? ''),
          path: req.url ?? '',
          headers: req.headers,
          body,
          json,
          signatureOk: this.secret === undefined ? undefined : typeof sig === 'string' && verifyOutpostSignature(this.secret, body, sig),
          status: 0,
          at: Date.now(),
        };
        this.requests.push(rec);
        if (this.failLeft > 0) {
          this.failLeft -= 1;
          return this.answer(res, rec, this.failStatus);
        }
        if (this.holding) return void this.held.push({ res, rec });
        this.answer(res, rec, 200);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops open connections: senders get connection refused / reset. */
  async down(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    for (const { res } of this.held.splice(0)) res.destroy();
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  close(): Promise<void> {
    return this.down();
  }

  /** Requests this receiver accepted (answered 2xx). */
  accepted(): Received[] {
    return this.requests.filter((r) => r.status >= 200 && r.status < 300);
  }

  /** Accepted requests with distinct delivery ids, in first-acceptance order. */
  uniqueAccepted(): Received[] {
    const seen = new Set<string>();
    return this.accepted().filter((r) => !seen.has(r.id) && seen.add(r.id));
  }

  waitFor<T>(what: string, fn: (r: Receiver) => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    return until(what, () => fn(this), timeoutMs, 50);
  }

  private answer(res: ServerResponse, rec: Received, status: number): void {
    rec.status = status;
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'fail');
  }
}
