/**
 * The webhooks benchmark's peer: what one lane of deliveries costs with nothing but an HTTP client.
 * The same requests the outbox makes (an event body, signed, X-Outpost-Delivery and -Event headers)
 * go to the same receiver one at a time over a keep-alive connection, with no queue, no disk and no
 * event log in between.
 */
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { outpostSignature } from '../../../plugins/sdk/signature.ts';
import { sleep } from '../../../test/helpers/cluster.ts';

export class BareWebhookClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly target: URL;

  constructor(
    url: string,
    private readonly secret: string,
  ) {
    this.target = new URL(url);
  }

  /** Posts one event body with `tag` as its message; resolves with the status once the answer is read. */
  post(tag: string): Promise<number> {
    const body = JSON.stringify({ id: `ev_${randomBytes(8).toString('hex')}`, event: 'test.ping', ts: new Date().toISOString(), data: { message: tag, at: new Date().toISOString() } });
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'bare-client',
      'x-outpost-delivery': `dl_${randomBytes(8).toString('hex')}`,
      'x-outpost-event': 'test.ping',
      'x-outpost-signature': outpostSignature(this.secret, body, Math.floor(Date.now() / 1000)),
    };
    return new Promise((resolve, reject) => {
      const req = request({ host: this.target.hostname, port: this.target.port, path: this.target.pathname, method: 'POST', headers, agent: this.agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** n requests back to back, one in flight (a lane); resolves with the rate in requests per second. */
  async burst(n: number, prefix: string): Promise<number> {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await this.post(`${prefix}-${i}`);
    return n / ((performance.now() - t0) / 1000);
  }

  /** n requests started at `rate` per second, one in flight at a time as a lane would (a late one goes as soon as it can). */
  async paced(n: number, rate: number, prefix: string): Promise<void> {
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      await sleep(t0 + (i * 1000) / rate - Date.now());
      await this.post(`${prefix}-${i}`);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
