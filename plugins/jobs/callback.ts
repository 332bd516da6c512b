/**
 * The agent half's engine: one callback attempt, `POST linkUrl {"data": <content>}` with the signed
 * headers (facts §6), under the task's timeout with a real AbortController. Success is a 2xx whose
 * body is exactly `success` (trimmed); anything else fails. Redirects are never followed (the signed
 * request would go somewhere the application did not name).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { outpostSignature } from '../sdk/index.ts';
import { appPayload, newNonce, serendipitySignature, unixSeconds } from './sign.ts';

export interface CallbackJob {
  taskId: number;
  /** Attempt number, sent as X-Outpost-Attempt. */
  n: number;
  /** The node performing it, for the attempt record. */
  node: string;
  linkUrl: string;
  /** The task content as JSON text, as the client sent it. */
  content: string;
  timeoutMs: number;
  appKey: string;
  appName: string;
  secretKey: string;
}

export interface CallbackResult {
  n: number;
  node: string;
  startedAt: number;
  elapsedMs: number;
  statusCode: number | null;
  error: string | null;
  ok: boolean;
}

export interface CallbackOptions {
  /** Aborts the attempt from outside (a cancel). */
  signal?: AbortSignal;
  /** Bytes of response read at most; the rest is discarded (the answer that counts is 7 bytes). */
  maxResponseBytes?: number;
  agents?: { http: HttpAgent; https: HttpsAgent };
}

/** Keep-alive pools shared by all attempts of a process: receivers get many callbacks in a row. */
const sharedAgents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

export const USER_AGENT = 'Outpost-jobs';

/** The exact body: content is spliced in as written, so big integers and number forms survive. */
export function callbackBody(content: string): string {
  return `{"data":${content}}`;
}

/** Serendipity's five headers (fresh nonce per attempt) plus Outpost's idempotency and body signature. */
export function callbackHeaders(job: CallbackJob, body: string, nowMs = Date.now()): Record<string, string> {
  const t = unixSeconds(nowMs);
  const timestamps = String(t);
  const nonce = newNonce();
  const payload = appPayload(job.appName);
  return {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': USER_AGENT,
    app_key: job.appKey,
    nonce,
    timestamps,
    payload,
    signature: serendipitySignature(timestamps, nonce, payload, job.secretKey),
    'x-outpost-task': String(job.taskId),
    'x-outpost-attempt': String(job.n),
    'x-outpost-signature': outpostSignature(job.secretKey, body, t),
  };
}

export async function performCallback(job: CallbackJob, opts: CallbackOptions = {}): Promise<CallbackResult> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const done = (statusCode: number | null, error: string | null): CallbackResult => ({ n: job.n, node: job.node, startedAt, elapsedMs: Math.round(performance.now() - t0), statusCode, error, ok: error === null });
  if (opts.signal?.aborted) return done(null, 'cancelled before it started');
  // One controller for the deadline and a cancel (AbortSignal.any per callback costs more than the request).
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, job.timeoutMs);
  const cancel = () => abort.abort();
  opts.signal?.addEventListener('abort', cancel, { once: true });
  try {
    const body = callbackBody(job.content);
    const res = await send(job.linkUrl, callbackHeaders(job, body), body, abort.signal, opts.agents ?? sharedAgents);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400) {
      res.destroy();
      return done(status, `HTTP ${status}: redirects are not followed`);
    }
    const limit = opts.maxResponseBytes ?? 64 * 1024;
    const text = await readCapped(res, limit);
    if (status < 200 || status >= 300) return done(status, `HTTP ${status}${text ? `: ${excerpt(text)}` : ''}`);
    if (text.trim() !== 'success') return done(status, `HTTP ${status} but the body is ${text === '' ? 'empty' : excerpt(text)}, not "success"`);
    return done(status, null);
  } catch (err) {
    if (timedOut) return done(null, `timed out after ${job.timeoutMs} ms`);
    if (opts.signal?.aborted) return done(null, 'cancelled');
    return done(null, networkError(err));
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', cancel);
  }
}

function send(url: string, headers: Record<string, string>, body: string, signal: AbortSignal, agents: { http: HttpAgent; https: HttpsAgent }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = url.startsWith('https:');
    const req = (https ? httpsRequest : httpRequest)(url, { method: 'POST', headers, signal, agent: https ? agents.https : agents.http }, resolve);
    req.once('error', reject);
    req.end(body);
  });
}

/** Up to limit bytes of the body as text; an abort (deadline, cancel) mid-body rejects. */
function readCapped(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      if (size >= limit) return;
      chunks.push(c.subarray(0, limit - size));
      size += Math.min(c.length, limit - size);
      // Enough to judge: stop the transfer rather than buffer a large answer.
      if (size >= limit) {
        res.destroy();
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', reject);
    res.once('close', () => {
      if (!res.complete) reject(new Error('the connection closed before the response ended'));
    });
  });
}

/** A short, printable quote of what the receiver said (it lands in task detail and logs). */
function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return JSON.stringify(flat.length > 120 ? `${flat.slice(0, 120)}…` : flat);
}

/** The error's code and message: they name the address, never a header or the secret. */
function networkError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const message = (e.message ?? String(err)).slice(0, 200);
  return `network error: ${e.code && !message.includes(e.code) ? `${e.code} ` : ''}${message}`;
}
