import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** Response bytes read before the connection is dropped; enough to keep small answers on keep-alive. */
const RESPONSE_READ_LIMIT = 64 * 1024;

export interface AttemptOutcome {
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** Why the attempt failed; absent for a 2xx. */
  error?: string;
}

/**
 * One POST per delivery attempt, over keep-alive connections kept per receiver (node:http's agents).
 * Why not fetch: a lane sends one request at a time, so per-request overhead is its throughput, and
 * fetch with an AbortSignal timer per request cost several times a plain request on a pooled socket.
 * Redirects are never followed (a 3xx is a failure), at most 64 KiB of an answer is read, and every
 * attempt has a hard timeout covering connect, request and response.
 */
export class Sender {
  private readonly http = new HttpAgent({ keepAlive: true });
  private readonly https = new HttpsAgent({ keepAlive: true });

  constructor(private readonly timeoutMs: number) {}

  send(url: URL, headers: Record<string, string>, body: string): Promise<AttemptOutcome> {
    return this.once(url, headers, body).catch((err: NodeJS.ErrnoException & { reused?: boolean }) => {
      // A keep-alive connection the receiver closed while idle fails the next request before the
      // receiver saw any of it: that one is sent again at once on a fresh connection.
      if (err.reused && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return this.once(url, headers, body);
      throw err;
    }).catch((err: Error) => ({ error: describe(err, this.timeoutMs) }));
  }

  private once(url: URL, headers: Record<string, string>, body: string): Promise<AttemptOutcome> {
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      let req: ClientRequest | undefined = undefined;
      const timer = setTimeout(() => req?.destroy(Object.assign(new Error('timeout'), { name: 'TimeoutError' })), this.timeoutMs);
      const done = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      req = (secure ? httpsRequest : httpRequest)(
        url,
        { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: secure ? this.https : this.http },
        (res) => readLimited(res).then(() => done(() => resolve(outcome(res.statusCode ?? 0))), (err) => done(() => reject(err))),
      );
      req.on('error', (err: NodeJS.ErrnoException & { reused?: boolean }) => {
        err.reused = req?.reusedSocket;
        done(() => reject(err));
      });
      // A string body goes out with the headers in one write (a Buffer would take a second one).
      req.end(body);
    });
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

function outcome(status: number): AttemptOutcome {
  if (status >= 200 && status < 300) return { status };
  if (status >= 300 && status < 400) return { status, error: `receiver answered HTTP ${status}; redirects are not followed` };
  return { status, error: `receiver answered HTTP ${status}` };
}

/** Reads (and drops) the answer up to the limit; past it the connection is closed instead of read on. */
function readLimited(res: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    let n = 0;
    res.on('data', (chunk: Buffer) => {
      n += chunk.length;
      if (n > RESPONSE_READ_LIMIT) {
        res.destroy();
        resolve();
      }
    });
    res.on('end', resolve);
    // The status already decided the attempt; a body cut short changes nothing.
    res.on('error', () => resolve());
    res.on('close', resolve);
  });
}

function describe(err: Error & { code?: string }, timeoutMs: number): string {
  if (err.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  return err.message || err.code || String(err);
}
