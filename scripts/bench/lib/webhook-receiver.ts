/**
 * A loopback webhook receiver for the webhooks benchmark: answers after `delayMs`, fails a share of
 * requests with HTTP 500, verifies every signature, and records when each event was first accepted.
 * `close()` on the gate holds requests unanswered until `open()`, so a backlog can build up and the
 * rate at which it drains is measured without the rate at which it was filled.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyOutpostSignature } from '../../../plugins/sdk/signature.ts';

export interface Accepted {
  /** The bench's tag for the event (its test message). */
  tag: string;
  /** Event timestamp from the body, ms since epoch. */
  eventTs: number;
  /** When this receiver answered 2xx for it, ms since epoch. */
  at: number;
}

export class BenchReceiver {
  readonly accepted: Accepted[] = [];
  private readonly acceptedIds = new Set<string>();
  requests = 0;
  failedOnPurpose = 0;
  /** 2xx answers for a delivery id already accepted (a retry after a lost answer would do this). */
  duplicates = 0;
  badSignatures = 0;
  private server: Server | undefined;
  port = 0;
  private gated = false;
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly secret: string,
    private readonly opts: { delayMs?: number; failRate?: number } = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const body = Buffer.concat(chunks).toString('utf8');
        if (!verifyOutpostSignature(this.secret, body, String(req.headers['x-outpost-signature'] ?? ''))) this.badSignatures++;
        const answer = () => {
          if (this.opts.failRate && Math.random() < this.opts.failRate) {
            this.failedOnPurpose++;
            res.writeHead(500).end('failing on purpose');
            return;
          }
          const id = String(req.headers['x-outpost-delivery'] ?? '');
          if (this.acceptedIds.has(id)) this.duplicates++;
          else {
            this.acceptedIds.add(id);
            const ev = JSON.parse(body) as { ts: string; data: { message: string } };
            this.accepted.push({ tag: ev.data.message, eventTs: Date.parse(ev.ts), at: Date.now() });
          }
          res.writeHead(200).end('ok');
        };
        if (this.gated) this.waiting.push(answer);
        // A gate closed during the delay holds the answer too, so a count taken behind the gate is exact.
        else if (this.opts.delayMs) setTimeout(() => (this.gated ? this.waiting.push(answer) : answer()), this.opts.delayMs);
        else answer();
      });
    });
    // Many keep-alive connections from the controller's fetch pool; never let the server drop them first.
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Requests wait unanswered from now on. */
  closeGate(): void {
    this.gated = true;
  }

  /** Answers the requests held so far and lets later ones through; returns when it opened. */
  openGate(): number {
    this.gated = false;
    const at = Date.now();
    for (const answer of this.waiting.splice(0)) answer();
    return at;
  }

  /** Forgets what was received (the next phase of a run starts from nothing). */
  reset(): void {
    this.accepted.length = 0;
    this.acceptedIds.clear();
    this.requests = this.failedOnPurpose = this.duplicates = this.badSignatures = 0;
  }

  /** Requests held by the gate. */
  held(): number {
    return this.waiting.length;
  }

  /** Events accepted in an order that goes back in time (the outbox promises FIFO per subscription). */
  outOfOrder(): number {
    let n = 0;
    for (let i = 1; i < this.accepted.length; i++) if (this.accepted[i].eventTs < this.accepted[i - 1].eventTs) n++;
    return n;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
