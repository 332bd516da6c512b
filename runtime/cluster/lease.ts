/**
 * The singleton lease: which controller runs the work that must run once (runtime/cluster/singleton.ts).
 * A holder's time with the lease is a term, numbered by the lease's epoch; work started for a term
 * carries its fence (plugins/sdk/durable/fence.ts) and is stopped when the term ends.
 *
 * Three kinds: SingletonLease, taken and renewed in a shared store (PostgreSQL) by several controllers;
 * and ManualLease, granted and revoked by its owner: a controller on files holds it from start to stop
 * (one process per data dir, epoch 1), tests hold and lose it at will.
 */
import type { Fence } from '../../plugins/sdk/durable/fence.ts';
import type { Log } from '../../plugins/sdk/log.ts';

export interface Term {
  readonly epoch: number;
  /** Aborted when the term ends (lease lost, released, or the controller stopping). */
  readonly signal: AbortSignal;
  readonly fence: Fence;
}

export interface LeaseView {
  name: string;
  /** This controller's id. */
  self: string;
  /** Whether this controller holds the lease now. */
  held: boolean;
  /** The holder as last seen (by this controller's last acquire, renew or read). */
  holder: string | null;
  epoch: number | null;
  /** Epoch ms (the store's clock) at which the holder's term ends unless renewed. */
  expiresAt: number | null;
  /** Why the last attempt to take or keep the lease failed, when it did (the database away). */
  error?: string;
}

export interface Lease {
  readonly name: string;
  readonly self: string;
  current(): Term | undefined;
  /** fn runs for every term that starts from now on (and for the current one, if any). */
  onTerm(fn: (term: Term) => void): () => void;
  view(): LeaseView;
  stop(): Promise<void>;
}

/** Terms and their listeners: what every kind of lease shares. */
class Terms {
  private term: { t: Term; ac: AbortController } | undefined;
  private readonly listeners = new Set<(t: Term) => void>();

  constructor(
    private readonly name: string,
    private readonly self: string,
    private readonly log?: Log,
  ) {}

  current(): Term | undefined {
    return this.term?.t;
  }

  on(fn: (t: Term) => void): () => void {
    this.listeners.add(fn);
    if (this.term) fn(this.term.t);
    return () => this.listeners.delete(fn);
  }

  begin(epoch: number, valid: () => boolean): Term {
    this.end('a new term began');
    const ac = new AbortController();
    const fence: Fence = { lease: this.name, epoch, holder: this.self, valid: () => !ac.signal.aborted && valid() };
    const t: Term = { epoch, signal: ac.signal, fence };
    this.term = { t, ac };
    for (const fn of this.listeners) {
      try {
        fn(t);
      } catch (err) {
        this.log?.error({ lease: this.name, err: (err as Error).message }, 'singleton work failed to start');
      }
    }
    return t;
  }

  end(why: string): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    term.ac.abort(new Error(`lease ${this.name} epoch ${term.t.epoch} ended: ${why}`));
  }
}

/** A lease its owner grants and revokes: a file controller's (always held) and tests'. */
export class ManualLease implements Lease {
  private readonly terms: Terms;
  private epoch = 0;

  constructor(
    readonly name: string,
    readonly self: string,
  ) {
    this.terms = new Terms(name, self);
  }

  /** Starts a new term (epoch + 1); what ran for the previous one is stopped first. */
  grant(): Term {
    return this.terms.begin(++this.epoch, () => true);
  }

  revoke(why = 'revoked'): void {
    this.terms.end(why);
  }

  current(): Term | undefined {
    return this.terms.current();
  }

  onTerm(fn: (t: Term) => void): () => void {
    return this.terms.on(fn);
  }

  view(): LeaseView {
    const held = this.current() !== undefined;
    return { name: this.name, self: this.self, held, holder: held ? this.self : null, epoch: this.epoch || null, expiresAt: null };
  }

  async stop(): Promise<void> {
    this.terms.end('controller stopping');
  }
}

/** The lease as a shared store keeps it (PostgreSQL: runtime/cluster/pg-lease.ts). */
export interface LeaseRow {
  holder: string;
  epoch: number;
  /** Epoch ms, the store's clock. */
  expiresAt: number;
}

export interface LeaseBackend {
  /** Takes the lease if it is free, expired or held under this holder's name: a new epoch. Undefined when another holds it. */
  acquire(name: string, holder: string, ttlMs: number): Promise<LeaseRow | undefined>;
  /** Extends this holder's term at epoch; undefined when that term is over (expired, or taken over). */
  renew(name: string, holder: string, epoch: number, ttlMs: number): Promise<LeaseRow | undefined>;
  /** Ends this holder's term now, so another controller takes over at its next try instead of at the expiry. */
  release(name: string, holder: string, epoch: number): Promise<void>;
  read(name: string): Promise<LeaseRow | undefined>;
  /** Frees what the backend holds (its connections), after the last release. */
  close?(): Promise<void>;
}

export interface SingletonLeaseOptions {
  name?: string;
  /** How long a term lasts without renewal; default 6 s. Renewed every ttl/3. */
  ttlMs?: number;
  log: Log;
}

/**
 * A lease in a shared store, taken by one controller at a time. The holder renews every ttl/3; a
 * renew that fails or finds the term over ends the term at once. The holder never believes in its
 * term past the expiry counted conservatively on its own monotonic clock, from the moment it SENT the
 * acquire or renew (the store's expiry is later than that): a controller that was paused, or whose
 * renewals hang, stops its singleton work before anyone else can take over. Others try to take over
 * every ttl/3, so a dead holder is replaced within ttl + ttl/3 (8 s at the default ttl).
 */
export class SingletonLease implements Lease {
  readonly name: string;
  readonly ttlMs: number;
  private readonly terms: Terms;
  private readonly log: Log;
  /** performance.now() until which the current term may be believed. */
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private last: LeaseRow | undefined;
  private error: string | undefined;
  private stopped = true;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly backend: LeaseBackend,
    readonly self: string,
    opts: SingletonLeaseOptions,
  ) {
    this.name = opts.name ?? 'singleton';
    this.ttlMs = opts.ttlMs ?? 6000;
    this.log = opts.log.child({ part: 'lease' });
    this.terms = new Terms(this.name, self, this.log);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  current(): Term | undefined {
    return this.terms.current();
  }

  onTerm(fn: (t: Term) => void): () => void {
    return this.terms.on(fn);
  }

  view(): LeaseView {
    return { name: this.name, self: this.self, held: this.current() !== undefined, holder: this.last?.holder ?? null, epoch: this.last?.epoch ?? null, expiresAt: this.last?.expiresAt ?? null, ...(this.error ? { error: this.error } : {}) };
  }

  /** Ends the term and releases the lease, so a survivor need not wait for the expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    const t = this.current();
    this.drop('controller stopping');
    if (t) await this.backend.release(this.name, this.self, t.epoch).catch((err) => this.log.warn({ err: (err as Error).message }, 'could not release the lease; another controller takes over at its expiry'));
    await this.backend.close?.();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        this.schedule(Math.floor(this.ttlMs / 3));
      });
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const held = this.current();
    const sent = performance.now();
    try {
      const row = held ? await this.backend.renew(this.name, this.self, held.epoch, this.ttlMs) : await this.backend.acquire(this.name, this.self, this.ttlMs);
      this.error = undefined;
      if (this.stopped) return;
      if (row) {
        this.last = row;
        this.believe(sent);
        if (!held) {
          this.terms.begin(row.epoch, () => performance.now() < this.validUntil);
          this.log.info({ epoch: row.epoch }, 'this controller holds the singleton lease');
        }
        return;
      }
      if (held) this.drop(`epoch ${held.epoch} is over (expired or taken over)`);
      this.last = await this.backend.read(this.name);
    } catch (err) {
      this.error = (err as Error).message;
      if (held) this.drop(`could not renew: ${this.error}`);
    }
  }

  /** The term holds for ttl from when the request was sent, as this process counts time. */
  private believe(sent: number): void {
    this.validUntil = sent + this.ttlMs;
    this.armExpiry();
  }

  /**
   * Timers count on a millisecond clock of their own and may fire a little before performance.now()
   * reaches the expiry: such a wake-up waits again instead of leaving the term believed until a
   * renewal fails, which can take a query timeout (the suspected cause of a holder cut off from
   * PostgreSQL still saying it held the lease 10 s later, in one e2e run).
   */
  private armExpiry(): void {
    clearTimeout(this.expiry);
    this.expiry = setTimeout(() => {
      if (performance.now() >= this.validUntil) this.drop('not renewed in time');
      else if (this.current()) this.armExpiry();
    }, Math.max(0, Math.ceil(this.validUntil - performance.now())));
    this.expiry.unref();
  }

  private drop(why: string): void {
    clearTimeout(this.expiry);
    const t = this.current();
    if (!t) return;
    this.validUntil = 0;
    this.terms.end(why);
    this.log.warn({ epoch: t.epoch, why }, 'singleton lease lost: singleton work stops');
  }
}
