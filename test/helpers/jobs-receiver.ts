/**
 * A Serendipity-Job callback receiver for tests: records every callback and checks it the way an
 * application would — the five signed headers with its secretKey, the X-Outpost-Signature over the
 * body, the body's shape — and answers as told: `success`, another status or body, or not at all
 * (held until the sender gives up, to see timeouts and cancels cut the request).
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serendipitySignature } from '../../plugins/jobs/sign.ts';
import { verifyOutpostSignature } from '../../plugins/sdk/signature.ts';
import { until } from './cluster.ts';

export interface Callback {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** `data` of the body, or undefined when the body is not `{"data": …}`. */
  data: unknown;
  taskId: number;
  attempt: number;
  at: number;
  /** app_key, nonce, timestamps, payload, signature verify with the secretKey (base64 of hex HMAC). */
  signedOk: boolean;
  /** X-Outpost-Signature verifies over the exact body. */
  bodySignedOk: boolean;
  /** The sender closed the connection before this receiver answered (a timeout or a cancel). */
  aborted: boolean;
  answered: boolean;
}

export type Answer = { status?: number; body?: string } | 'hold';

export class JobsReceiver {
  readonly calls: Callback[] = [];
  /** Set once the application exists: signatures are checked against it. */
  secret = '';
  /** How to answer a callback; default `success`. */
  answer: (c: Callback) => Answer = () => ({ body: 'success' });
  private server!: Server;
  private readonly open = new Set<ServerResponse>();
  private readonly held = new Map<Callback, ServerResponse>();
  port = 0;

  static async start(): Promise<JobsReceiver> {
    const r = new JobsReceiver();
    r.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const h = req.headers;
        const one = (k: string) => (Array.isArray(h[k]) ? (h[k] as string[])[0] : (h[k] as string | undefined)) ?? '';
        let data: unknown;
        try {
          const parsed = JSON.parse(body);
          if (parsed && typeof parsed === 'object' && Object.keys(parsed).length === 1 && 'data' in parsed) data = parsed.data;
        } catch {
          data = undefined;
        }
        const c: Callback = {
          path: req.url ?? '',
          method: req.method ?? '',
          headers: h,
          body,
          data,
          taskId: Number(one('x-outpost-task')),
          attempt: Number(one('x-outpost-attempt')),
          at: Date.now(),
          signedOk: r.secret !== '' && one('signature') === serendipitySignature(one('timestamps'), one('nonce'), one('payload'), r.secret),
          bodySignedOk: r.secret !== '' && verifyOutpostSignature(r.secret, body, one('x-outpost-signature')),
          aborted: false,
          answered: false,
        };
        r.calls.push(c);
        r.open.add(res);
        res.on('close', () => {
          r.open.delete(res);
          if (!c.answered) c.aborted = true;
        });
        const a = r.answer(c);
        if (a === 'hold') {
          r.held.set(c, res);
          return;
        }
        c.answered = true;
        res.writeHead(a.status ?? 200).end(a.body ?? '');
      });
    });
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    r.port = (r.server.address() as AddressInfo).port;
    return r;
  }

  url(path = '/callback'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  of(taskId: number): Callback[] {
    return this.calls.filter((c) => c.taskId === taskId);
  }

  /** Waits until task taskId has had at least n callbacks; answers them. */
  async waitFor(taskId: number, n = 1, timeoutMs = 15_000): Promise<Callback[]> {
    return until(`${n} callback(s) of task ${taskId}`, () => (this.of(taskId).length >= n ? this.of(taskId) : undefined), timeoutMs);
  }

  /** Answers a held callback of the task now; false when none is held (or its connection is gone). */
  release(taskId: number, answer: { status?: number; body?: string } = { body: 'success' }): boolean {
    for (const [c, res] of this.held) {
      if (c.taskId !== taskId || c.aborted) continue;
      this.held.delete(c);
      c.answered = true;
      res.writeHead(answer.status ?? 200).end(answer.body ?? '');
      return true;
    }
    return false;
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
