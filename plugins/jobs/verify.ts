/**
 * Checks the signed headers of a request (facts §1), made sound: the payload must be md5(appName) of
 * that app, timestamps within ±window, each nonce accepted once per app, constant-time compare,
 * failures rate-limited. A refused request changes nothing: the nonce is reserved only once the
 * signature holds, and the caller commits it with the request's effect or releases it.
 */
import { timingSafeEqual } from 'node:crypto';
import { revealed, type Secret } from '../sdk/index.ts';
import type { NonceClaim, NonceStore } from './nonce-store.ts';
import type { FailureLimiter, Limit } from './rate-limit.ts';
import { serendipitySignature } from './sign.ts';

/** What the verifier needs of an application. */
export interface SigningApp {
  appKey: string;
  /** md5(appName), kept with the app so it is not recomputed per request. */
  payload: string;
  secretKey: Secret | string;
}

export interface VerifierOptions<A extends SigningApp> {
  findApp(appKey: string): A | undefined;
  nonces: NonceStore;
  limiter: FailureLimiter;
  /** Accepted distance of `timestamps` from now, both ways. */
  windowSec: number;
  /** How long a nonce is remembered after its timestamp; never less than the window. */
  nonceRetentionSec: number;
  perAppIp: Limit;
  perIp: Limit;
  now?: () => number;
}

export type Verdict<A> = { ok: true; app: A; claim: NonceClaim } | { ok: false; status: 401 | 429; message: string };

/** Header values as clients send them; one value each. */
export type HeaderBag = Record<string, string | string[] | undefined>;

const TIMESTAMP = /^\d{1,12}$/;
/** Printable ASCII without spaces: the original's are 16 alphanumerics; other clients' UUIDs fit too. */
const NONCE = /^[\x21-\x7e]{1,128}$/;

export class RequestVerifier<A extends SigningApp> {
  private readonly now: () => number;

  constructor(private readonly opts: VerifierOptions<A>) {
    this.now = opts.now ?? Date.now;
  }

  async verify(headers: HeaderBag, ip: string): Promise<Verdict<A>> {
    const now = this.now();
    // Behind nginx, underscores are dropped unless allowed; a client (or proxy) may send app-key instead.
    const appKey = one(headers, 'app_key') ?? one(headers, 'app-key') ?? '';
    const limits: Array<[string, Limit]> = [
      [`ip\n${ip}`, this.opts.perIp],
      [`app\n${appKey}\n${ip}`, this.opts.perAppIp],
    ];
    const wait = this.opts.limiter.retryAfter(limits, now);
    if (wait > 0) return { ok: false, status: 429, message: `too many failed signature checks from ${ip}; retry in ${wait} s` };

    const refuse = (message: string): Verdict<A> => {
      this.opts.limiter.fail(limits, now);
      return { ok: false, status: 401, message };
    };
    const nonce = one(headers, 'nonce');
    const timestamps = one(headers, 'timestamps');
    const payload = one(headers, 'payload');
    const signature = one(headers, 'signature');
    const missing = [appKey ? null : 'app_key', nonce ? null : 'nonce', timestamps ? null : 'timestamps', payload ? null : 'payload', signature ? null : 'signature'].filter(Boolean);
    if (missing.length) return refuse(`missing signed header${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
    if (!TIMESTAMP.test(timestamps!)) return refuse('header timestamps: must be Unix seconds, e.g. "1627371056"');
    if (!NONCE.test(nonce!)) return refuse('header nonce: must be 1 to 128 printable characters without spaces');
    const app = this.opts.findApp(appKey);
    if (!app) return refuse(`unknown app_key "${appKey.slice(0, 32)}"`);
    const skew = Number(timestamps) - now / 1000;
    if (Math.abs(skew) > this.opts.windowSec) {
      return refuse(`header timestamps: ${Math.round(Math.abs(skew))} s ${skew < 0 ? 'in the past' : 'in the future'}, outside the ±${this.opts.windowSec} s window (check the client clock)`);
    }
    if (!sameText(payload!, app.payload)) return refuse('header payload: must be md5(appName) of this application');
    if (!sameText(signature!, serendipitySignature(timestamps!, nonce!, payload!, revealed(app.secretKey)))) return refuse('header signature: does not match');
    const keepSec = Math.max(this.opts.windowSec, this.opts.nonceRetentionSec);
    // +1 s: the window is inclusive, so the request still passes during its last second.
    const claim = await this.opts.nonces.reserve(app.appKey, nonce!, (Number(timestamps) + keepSec + 1) * 1000);
    if (!claim) return refuse('header nonce: already used; sign every request with a fresh nonce');
    return { ok: true, app, claim };
  }
}

function one(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  // Lengths are public (a signature is always 88 characters); only the content must not leak through timing.
  return a.length === b.length && timingSafeEqual(a, b);
}
