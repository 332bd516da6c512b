import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { Counter } from '../sdk/index.ts';
import { createSerial } from '../sdk/serial.ts';

/**
 * External probe nodes authenticate every /deal and /node_tasks call with their passwd, stored as
 * scrypt(passwd, salt) (state.ts). scrypt costs 70–95 ms of CPU by design; run with scryptSync on the
 * event loop, 20 calls stalled every other route of the controller for 1.5 s. So: scrypt runs on the
 * libuv thread pool, a passwd verified once is remembered (as an HMAC under a key that lives only in this
 * process) so a prober's steady calls cost microseconds, identical concurrent checks share one scrypt, and
 * a caller that keeps failing is refused before any scrypt runs.
 */

/** Same parameters as every hash stored so far (N=16384, r=8, p=1, 32 bytes): existing registrations keep working. */
export function hashPasswd(passwd: string, salt: string): Promise<string> {
  return new Promise((resolve, reject) => scrypt(passwd, salt, 32, (err, key) => (err ? reject(err) : resolve(key.toString('hex')))));
}

export type PasswdResult = { ok: true; how: 'scrypt' | 'cached' } | { ok: false; limited: false } | { ok: false; limited: true; retryAfterS: number };

export interface PasswdLimits {
  /** Wrong passwds (and checks in flight) per caller before further attempts are refused without scrypt. */
  maxFailures: number;
  windowMs: number;
  /** Callers whose last verified passwd is remembered. */
  cacheSize: number;
}

const DEFAULTS: PasswdLimits = { maxFailures: 5, windowMs: 60_000, cacheSize: 1024 };

interface Failures {
  count: number;
  resetAt: number;
}

export class PasswdVerifier {
  private readonly key = randomBytes(32);
  private readonly limits: PasswdLimits;
  /** caller → the stored hash it was verified against and the HMAC of the passwd that matched it. */
  private readonly verified = new Map<string, { hash: string; mac: Buffer }>();
  private readonly failures = new Map<string, Failures>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  private readonly pending = new Map<string, number>();
  /**
   * scrypt holds a libuv pool thread (4 by default) for its whole run, and the stores' file writes need
   * those threads too: one scrypt at a time, so a burst delays other passwd checks, never a write.
   */
  private readonly slots = createSerial();

  constructor(
    private readonly checks?: Counter,
    limits: Partial<PasswdLimits> = {},
  ) {
    this.limits = { ...DEFAULTS, ...limits };
  }

  async verify(caller: string, passwd: string, stored: { salt: string; hash: string }, now = Date.now()): Promise<PasswdResult> {
    const mac = createHmac('sha256', this.key).update(passwd).digest();
    const known = this.verified.get(caller);
    if (known && known.hash === stored.hash && timingSafeEqual(known.mac, mac)) {
      this.checks?.inc({ result: 'cached' });
      return { ok: true, how: 'cached' };
    }
    // Checks still running count against the budget too, or a burst of distinct guesses would all reach scrypt.
    const f = this.currentFailures(caller, now);
    if ((f?.count ?? 0) + (this.pending.get(caller) ?? 0) >= this.limits.maxFailures) {
      this.checks?.inc({ result: 'limited' });
      return { ok: false, limited: true, retryAfterS: f ? Math.ceil((f.resetAt - now) / 1000) : 1 };
    }
    const good = await this.scryptOnce(caller, passwd, mac, stored);
    if (good) {
      this.failures.delete(caller);
      this.remember(caller, { hash: stored.hash, mac });
      return { ok: true, how: 'scrypt' };
    }
    this.fail(caller, now);
    return { ok: false, limited: false };
  }

  /** Concurrent checks of the same passwd against the same hash share one scrypt. */
  private scryptOnce(caller: string, passwd: string, mac: Buffer, stored: { salt: string; hash: string }): Promise<boolean> {
    const id = `${caller}\u0000${stored.hash}\u0000${mac.toString('hex')}`;
    let p = this.inflight.get(id);
    if (p) {
      this.checks?.inc({ result: 'shared' });
      return p;
    }
    this.pending.set(caller, (this.pending.get(caller) ?? 0) + 1);
    p = this.slots
      .run(() => hashPasswd(passwd, stored.salt))
      .then((hex) => {
        const a = Buffer.from(hex, 'hex');
        const b = Buffer.from(stored.hash, 'hex');
        const good = a.length === b.length && timingSafeEqual(a, b);
        this.checks?.inc({ result: good ? 'scrypt_ok' : 'scrypt_wrong' });
        return good;
      })
      .finally(() => {
        this.inflight.delete(id);
        const n = (this.pending.get(caller) ?? 1) - 1;
        if (n > 0) this.pending.set(caller, n);
        else this.pending.delete(caller);
      });
    this.inflight.set(id, p);
    return p;
  }

  private currentFailures(caller: string, now: number): Failures | undefined {
    const f = this.failures.get(caller);
    if (f && f.resetAt <= now) {
      this.failures.delete(caller);
      return undefined;
    }
    return f;
  }

  private fail(caller: string, now: number): void {
    this.verified.delete(caller);
    if (this.failures.size >= this.limits.cacheSize) {
      for (const [k, v] of this.failures) if (v.resetAt <= now) this.failures.delete(k);
      // Still full: forget the oldest entry rather than grow without bound.
      if (this.failures.size >= this.limits.cacheSize) this.failures.delete(this.failures.keys().next().value!);
    }
    const f = this.currentFailures(caller, now);
    if (f) f.count += 1;
    else this.failures.set(caller, { count: 1, resetAt: now + this.limits.windowMs });
  }

  private remember(caller: string, entry: { hash: string; mac: Buffer }): void {
    this.verified.delete(caller);
    if (this.verified.size >= this.limits.cacheSize) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(caller, entry);
  }
}
