/**
 * The singleton lease's rules on a store that behaves as outpost_leases does (one row, judged by the
 * store's clock): one holder at a time, a new epoch on every takeover, the term ends at once when a
 * renewal fails, and a term's fence turns invalid when it ends. The PostgreSQL row itself is tested
 * in test/e2e/controllers-lease.e2e.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SingletonLease, ManualLease, type LeaseBackend, type LeaseRow, type Term } from '../runtime/cluster/lease.ts';
import { runSingleton } from '../runtime/cluster/singleton.ts';
import { currentFence } from '../plugins/sdk/durable/fence.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { until } from './helpers/cluster.ts';

class MemoryLeases implements LeaseBackend {
  row: (LeaseRow & { name: string }) | undefined;
  down = false;
  tries = new Map<string, number>();
  private check(): void {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  }
  async acquire(name: string, holder: string, ttlMs: number) {
    this.check();
    this.tries.set(holder, (this.tries.get(holder) ?? 0) + 1);
    const now = Date.now();
    if (this.row && this.row.holder !== holder && this.row.expiresAt > now) return undefined;
    this.row = { name, holder, epoch: (this.row?.epoch ?? 0) + 1, expiresAt: now + ttlMs };
    return { ...this.row };
  }
  async renew(name: string, holder: string, epoch: number, ttlMs: number) {
    this.check();
    if (!this.row || this.row.holder !== holder || this.row.epoch !== epoch || this.row.expiresAt <= Date.now()) return undefined;
    this.row.expiresAt = Date.now() + ttlMs;
    return { ...this.row };
  }
  async release(_name: string, holder: string, epoch: number) {
    this.check();
    if (this.row?.holder === holder && this.row.epoch === epoch) this.row.expiresAt = Date.now();
  }
  async read() {
    this.check();
    return this.row && { ...this.row };
  }
}

const log = createLog('test', 'silent');

test('one holder at a time; a takeover after a release has a higher epoch and ends nothing of the survivor', async () => {
  const store = new MemoryLeases();
  // A long ttl: a loaded test machine stalling a's renewals must not make b's takeover legitimate.
  const a = new SingletonLease(store, 'ctl_aaaaaaaa', { ttlMs: 3000, log });
  const b = new SingletonLease(store, 'ctl_bbbbbbbb', { ttlMs: 3000, log });
  a.start();
  const first = await until('a holds', () => a.current());
  b.start();
  await until('b tried twice', () => (store.tries.get('ctl_bbbbbbbb') ?? 0) >= 2);
  assert.equal(b.current(), undefined);
  assert.equal(b.view().holder, 'ctl_aaaaaaaa');
  assert.equal(a.current(), first, 'a keeps its term while it renews');
  await a.stop();
  assert.ok(first.signal.aborted);
  assert.equal(first.fence.valid(), false, 'the fence of an ended term is refused');
  const second = await until('b takes over', () => b.current());
  assert.ok(second.epoch > first.epoch, `epoch ${second.epoch} after ${first.epoch}`);
  assert.equal(second.fence.holder, 'ctl_bbbbbbbb');
  await b.stop();
});

test('a failed renewal ends the term at once; back again, a new term with a new epoch', async () => {
  const store = new MemoryLeases();
  const a = new SingletonLease(store, 'ctl_aaaaaaaa', { ttlMs: 300, log });
  a.start();
  const first = await until('a holds', () => a.current());
  store.down = true;
  await until('term over', () => first.signal.aborted);
  assert.equal(a.current(), undefined);
  assert.match(a.view().error ?? '', /ECONNREFUSED/);
  store.down = false;
  const second = await until('a holds again', () => a.current());
  assert.ok(second.epoch > first.epoch);
  await a.stop();
});

test('singleton work runs fenced for each term and is disposed of when the term ends', async () => {
  const lease = new ManualLease('singleton', 'ctl_cccccccc');
  const seen: Array<{ epoch: number; fenced: number | undefined }> = [];
  let disposed = 0;
  const stop = runSingleton(lease, 'test work', log, ({ epoch }) => {
    seen.push({ epoch, fenced: currentFence()?.epoch });
    return () => {
      disposed += 1;
    };
  });
  assert.deepEqual(seen, []);
  const t1: Term = lease.grant();
  await until('started', () => seen.length === 1);
  assert.deepEqual(seen, [{ epoch: 1, fenced: 1 }]);
  lease.revoke();
  await until('disposed', () => disposed === 1);
  assert.equal(t1.fence.valid(), false);
  lease.grant();
  await until('started again', () => seen.length === 2);
  assert.deepEqual(seen.at(-1), { epoch: 2, fenced: 2 });
  await stop();
  assert.equal(disposed, 2, 'stopping disposes of the running term');
});
