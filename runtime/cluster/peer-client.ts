/**
 * The calling end of calls between controllers: a signed POST of an encoded body to another
 * controller's internal endpoint, over kept-alive connections (a forwarded command then costs one
 * round trip on an open socket, not a TCP handshake).
 */
import http from 'node:http';
import https from 'node:https';
import { PEER_MAX_BODY } from './peer-codec.ts';
import { signPeerCall } from './peer-sign.ts';

export const PEER_PATH = '/internal/v1/peer';

export class PeerClient {
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
    https: new https.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
  };

  constructor(
    private readonly self: string,
    private readonly secret: Buffer,
  ) {}

  /**
   * The peer's answer body (status 200); rejects with an Error saying why when the call itself failed:
   * unreachable, no answer within timeoutMs, or refused (its status and the envelope's message).
   */
  post(baseUrl: string, body: Buffer, timeoutMs: number): Promise<Buffer> {
    const url = new URL(PEER_PATH, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    const secure = url.protocol === 'https:';
    const request = secure ? https.request : http.request;
    return new Promise<Buffer>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        agent: secure ? this.agents.https : this.agents.http,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...signPeerCall(this.secret, this.self, body) },
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > PEER_MAX_BODY) req.destroy(new Error(`answer larger than ${PEER_MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const data = Buffer.concat(chunks, size);
          if (res.statusCode === 200) return resolve(data);
          reject(new Error(`refused the call (${res.statusCode}${envelopeMessage(data)})`));
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      req.end(body);
    });
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

/** `: message` of an error envelope ({error: {message}} or {error: "…"}), when the body is one. */
function envelopeMessage(data: Buffer): string {
  try {
    const v = JSON.parse(data.toString('utf8')) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof v.error === 'string' ? v.error : (v.error?.message ?? v.message);
    return typeof m === 'string' ? `: ${m.slice(0, 300)}` : '';
  } catch {
    return '';
  }
}
