/**
 * Three controllers on one real PostgreSQL 15 (test/e2e/lib/postgres.ts), same config, only port and
 * data dir differ: exactly one holds the singleton lease; kill -9 of the holder (twice) → a survivor
 * holds within 10 s with a higher epoch and runs the singleton work (a webhook test ping whose
 * attempts failed under the dead holder is delivered under the same delivery id; prober callbacks
 * resume); a holder SIGSTOPped past its expiry is replaced and, woken up, stops its singleton work;
 * PostgreSQL stopped → every controller drops the lease within one period and the work stops, started
 * again → one holder and the work resumes. And at the store level: a write fenced by a stale epoch is
 * refused in its transaction (store, log, queue), the unfenced writes of its batch are kept.
 *
 * The agent reaches the controllers through a small switchable TCP forwarder pointed at the holder:
 * the prober's monitors and votes live in its log, which each controller keeps in memory as it read
 * it (stores are coherent across controllers, plugin logs are not yet), so the votes must reach the
 * controller deciding the rounds.
 * Prints the measured takeover and drop times.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { TestAgent, TestController, stopProc, until, sleep } from '../helpers/cluster.ts';
import { startReceiver } from './lib/receiver.ts';
import { forwarder } from './lib/forwarder.ts';
import { holder, status } from './lib/lease.ts';
import { startTarget, postForm } from '../prober-fixtures.ts';
import { controllersOn, postgresForFile } from './lib/postgres.ts';
import { Database } from '../../runtime/storage/postgres/database.ts';
import { migrate } from '../../runtime/storage/postgres/schema.ts';
import { PgContext } from '../../runtime/storage/postgres/context.ts';
import { PostgresBackend } from '../../runtime/storage/postgres/backend.ts';
import { PgLeaseBackend } from '../../runtime/cluster/pg-lease.ts';
import { validFences } from '../../runtime/storage/postgres/fence-check.ts';
import { runFenced, StaleLeaseError, type Fence } from '../../plugins/sdk/durable/fence.ts';
import { Secret } from '../../plugins/sdk/secret.ts';
import { createLog } from '../../plugins/sdk/log.ts';

const pg = postgresForFile();

const TTL_MS = 6000;

test('three controllers on one database: one holder; kill -9 of the holder twice, SIGSTOP past the expiry, PostgreSQL stopped and started', async () => {
  const url = await pg.createDatabase();
  const target = await startTarget();
  let failPings = false;
  const rx = await startReceiver({ respond: (r) => (failPings && r.headers['x-outpost-event'] === 'test.ping' ? 503 : 200) });
  const fwd = await forwarder();
  const config = {
    plugins: { prober: { apps: { shop: { callbackUrl: `${rx.url}/cb` } }, minInterval: 2, graceMs: 800 } },
    webhooks: { baseDelayMs: 200, maxDelayMs: 400 },
    cluster: { leaseTtlMs: TTL_MS },
  };
  const adminToken = `opa_test_lease_${Date.now().toString(36)}`;
  const start = controllersOn(pg, url, { config, adminToken });
  const a = await start();
  const cs: TestController[] = [a];
  let agent: TestAgent | undefined;
  const takeovers: number[] = [];
  try {
    // The first controller holds the lease at once; the subscription and the monitor are made there
    // before the others start, so that every controller's copy of the stores has them.
    const first = await holder([a], 'a first holder');
    assert.equal(first.c, a);
    fwd.to(a.port);
    agent = await TestAgent.start({ url: fwd.url, joinToken: () => a.joinToken() } as unknown as TestController, { name: 'lease-node', plugins: { prober: {} } });
    await until('node up', async () => (await a.node(agent!.nodeId))?.state === 'up', 30_000);
    assert.equal((await a.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'] })).status, 201);
    await until('a live probe node', async () => (await a.api('GET', '/api/v1/prober/groups')).body?.probe_nodes?.some((n: any) => n.live), 30_000);
    const mon = await postForm(`${a.url}/operate_monitor`, { app_name: 'shop', group_id: 1, record_ids: '11', ips: '127.0.0.1', protocol: 'tcp', port: target.port, interval: 2, timeout: 1 });
    assert.equal(mon.body.code, 1000, JSON.stringify(mon.body));
    const callbacks = () => rx.requests.filter((r) => r.path === '/hook/cb').length;
    await until('a first prober callback', () => callbacks() >= 1, 30_000);
    cs.push(await start(), await start());

    const one = await holder(cs, 'exactly one holder of three');
    assert.equal(one.c, a, 'the first controller keeps the lease while the others start');
    // A controller just started names the holder once its first try at the lease has read it.
    const statuses = await until('every controller names the holder', async () => {
      const all = await Promise.all(cs.map(status));
      return all.every((s) => s?.lease?.holder) ? all : undefined;
    }, 10_000);
    assert.equal(new Set(statuses.map((s) => s.controller.id)).size, 3, 'three controller ids');
    for (const s of statuses) {
      assert.equal(s.lease.holder, one.s.controller.id, 'all agree on the holder');
      assert.equal(s.store.kind, 'postgres');
      assert.doesNotMatch(JSON.stringify(s), new RegExp(pg.password), 'no password in the status');
    }
    await until('presence: the holder holds the agent link, seen by every controller', async () => {
      const all = await Promise.all(cs.map(status));
      return all.every((s) => s?.controllers?.length === 3 && s.controllers.find((x: any) => x.id === one.s.controller.id)?.nodes?.includes(agent!.nodeId));
    }, 15_000);

    // kill -9 of the holder, twice.
    let current = one;
    for (const round of [1, 2]) {
      const epochBefore = current.s.lease.epoch;
      const others = cs.filter((c) => c !== current.c);
      // A ping whose attempts fail under the holder, recorded on another controller (any controller records).
      failPings = true;
      const ping = await others[0].api('POST', '/api/v1/events/test', { message: `before kill ${round}` });
      assert.equal(ping.status, 202, ping.text);
      const tried = await rx.waitFor('test.ping', (r) => r.json?.data?.message === `before kill ${round}`, 30_000);
      const deliveryId = String(tried.headers['x-outpost-delivery']);
      const seenCallbacks = callbacks();
      await stopProc(current.c.proc, 'SIGKILL');
      const killedAt = Date.now();
      const next = await holder(others, `a survivor holds after kill ${round}`, 20_000);
      const took = Date.now() - killedAt;
      takeovers.push(took);
      assert.ok(took <= 10_000, `takeover after ${took} ms`);
      assert.ok(next.s.lease.epoch > epochBefore, `epoch ${next.s.lease.epoch} after ${epochBefore}`);
      // Its singleton work runs: the ping is delivered by the survivor under its delivery id, callbacks resume.
      failPings = false;
      const delivered = await rx.waitFor('test.ping', (r) => r.status === 200 && r.json?.data?.message === `before kill ${round}`, 30_000);
      assert.equal(delivered.headers['x-outpost-delivery'], deliveryId, 'the same delivery id');
      assert.ok(delivered.at > killedAt);
      fwd.to(next.c.port);
      await until(`prober callbacks resume after kill ${round}`, () => callbacks() > seenCallbacks, 30_000);
      // The dead one comes back as a member, not as the holder.
      await current.c.boot();
      const after = await holder(cs, `one holder with the killed controller back (round ${round})`);
      assert.equal(after.c, next.c);
      current = next;
    }

    // SIGSTOP past the expiry: another takes over; woken up, the old holder stops its singleton work.
    const stopped = current;
    const others = cs.filter((c) => c !== stopped.c);
    stopped.c.proc.child.kill('SIGSTOP');
    const pausedAt = Date.now();
    let successor!: { c: TestController; s: any };
    try {
      successor = await holder(others, 'a holder while the old one is paused', 20_000);
      takeovers.push(Date.now() - pausedAt);
      assert.ok(successor.s.lease.epoch > stopped.s.lease.epoch);
      // Paused well past its own expiry, so that it wakes up with work due.
      await sleep(Math.max(0, pausedAt + TTL_MS + 2000 - Date.now()));
    } finally {
      stopped.c.proc.child.kill('SIGCONT');
    }
    // It drops the lease by its own clock at once, then sees the successor at its next try (ttl/3).
    const woke = await until('the woken holder says it does not hold the lease, and who does', async () => {
      const s = await status(stopped.c);
      return s && !s.lease.held && s.lease.holder === successor.s.controller.id ? s : undefined;
    }, 10_000);
    assert.ok(woke.lease.epoch > stopped.s.lease.epoch);
    await stopped.c.proc.waitFor(/singleton lease lost/, 10_000);
    const still = await holder(cs, 'one holder after the wake-up');
    assert.equal(still.c, successor.c);
    fwd.to(successor.c.port);

    // PostgreSQL stopped: every controller drops the lease within one period; the work stops.
    const beforeOutage = callbacks();
    await until('callbacks flow before the outage', () => callbacks() > beforeOutage, 30_000);
    await pg.stop();
    const downAt = Date.now();
    let dropped = NaN;
    try {
      await until('no controller holds the lease', async () => (await Promise.all(cs.map(status))).every((s) => s && !s.lease.held), TTL_MS + 4000, 50);
      dropped = Date.now() - downAt;
      assert.ok(dropped <= TTL_MS, `dropped after ${dropped} ms (ttl ${TTL_MS})`);
      // Rounds are not decided and no callback goes out while nobody holds the lease.
      await sleep(1000);
      const quiet = callbacks();
      await sleep(4000);
      assert.equal(callbacks(), quiet, 'no callback while the database is away');
      const s = await status(cs[0]);
      assert.equal(s.store.healthy, false);
      assert.match(s.lease.error ?? '', /ECONNREFUSED|terminat|connect/i);
    } finally {
      await pg.start();
    }
    const back = await holder(cs, 'one holder once PostgreSQL is back', 30_000);
    const resumedAt = Date.now();
    fwd.to(back.c.port);
    const afterOutage = callbacks();
    await until('callbacks resume after the outage', () => callbacks() > afterOutage, 30_000);

    console.log(`controllers-lease: takeover after kill -9: ${takeovers.slice(0, 2).map((t) => `${(t / 1000).toFixed(1)} s`).join(', ')}; after SIGSTOP: ${(takeovers[2] / 1000).toFixed(1)} s; lease dropped ${(dropped / 1000).toFixed(1)} s after PostgreSQL stopped; a holder ${((resumedAt - downAt) / 1000).toFixed(1)} s after the outage began (ttl ${TTL_MS / 1000} s)`);
  } finally {
    await agent?.stop();
    for (const c of cs) await c.stop();
    await Promise.all([target.close(), rx.close(), fwd.close()]);
  }
});

test('fencing in the database: a write with a stale epoch is refused in its own transaction, the unfenced writes of its batch are kept', async () => {
  const url = await pg.createDatabase();
  const db = new Database({ url: new Secret(url), application: 'outpost-test' });
  try {
    await migrate(db);
    const log = createLog('fence-test', 'silent');
    const backend = new PostgresBackend(new PgContext(db, 'test-owner', log, undefined));
    const leases = new PgLeaseBackend(db);
    const old = await leases.acquire('singleton', 'ctl_old00000', 60_000);
    assert.equal(old?.epoch, 1);
    // Taken over (the old term expired): the old holder, paused, still believes in epoch 1.
    await pg.sql(new URL(url).pathname.slice(1), "UPDATE outpost_leases SET expires_at = now() - interval '1 second'");
    const now = await leases.acquire('singleton', 'ctl_new00000', 60_000);
    assert.equal(now?.epoch, 2);
    assert.equal(await leases.acquire('singleton', 'ctl_old00000', 60_000), undefined, 'no takeover of a lease held and not expired');
    const stale: Fence = { lease: 'singleton', epoch: 1, holder: 'ctl_old00000', valid: () => true };
    const current: Fence = { lease: 'singleton', epoch: 2, holder: 'ctl_new00000', valid: () => true };

    // Store: fenced and unfenced updates in one group commit.
    const store = await backend.openStore<{ a: Record<string, number> }>('fence-store', { a: {} });
    const results = await Promise.allSettled([
      runFenced(stale, () => store.update((d) => void (d.a.stale = 1))),
      store.update((d) => void (d.a.plain = 2)),
      runFenced(current, () => store.update((d) => void (d.a.current = 3))),
    ]);
    assert.ok(results[0].status === 'rejected' && results[0].reason instanceof StaleLeaseError, String((results[0] as PromiseRejectedResult).reason));
    assert.deepEqual(results.slice(1).map((r) => r.status), ['fulfilled', 'fulfilled']);
    assert.deepEqual({ ...store.data.a }, { plain: 2, current: 3 }, 'memory: the refused change undone alone');
    const reread = await backend.openStore<{ a: Record<string, number> }>('fence-store', { a: {} });
    assert.deepEqual({ ...reread.data.a }, { plain: 2, current: 3 }, 'the database: the same');

    // Log: the stale lines leave the batch, the others are written.
    const seen: string[] = [];
    const logOpts = { dir: '/nonexistent', load: (r: string) => void seen.push(r), snapshot: () => [] as string[] };
    const l = await backend.openLog('fence-log', z.string(), logOpts);
    const appended = await Promise.allSettled([runFenced(stale, () => l.append(['stale'])), l.append(['plain']), runFenced(current, () => l.append(['current']))]);
    assert.ok(appended[0].status === 'rejected' && appended[0].reason instanceof StaleLeaseError);
    assert.deepEqual(appended.slice(1).map((r) => r.status), ['fulfilled', 'fulfilled']);
    seen.length = 0;
    await backend.openLog('fence-log', z.string(), logOpts);
    assert.deepEqual(seen, ['plain', 'current']);

    // Queue: schedules, leases and acks of the stale term refused; the current term's and unfenced ones go through.
    const q = await backend.openQueue('fence-queue', z.object({ n: z.number() }), { dir: '/nonexistent' });
    const scheduled = await Promise.allSettled([runFenced(stale, () => q.schedule({ n: 1 }, 0, { id: 'stale' })), q.schedule({ n: 2 }, 0, { id: 'plain' })]);
    assert.ok(scheduled[0].status === 'rejected' && scheduled[0].reason instanceof StaleLeaseError);
    assert.deepEqual((await q.items()).map((i) => i.id), ['plain']);
    await assert.rejects(runFenced(stale, () => q.lease(10, 60_000)), StaleLeaseError);
    const leased = await runFenced(current, () => q.lease(10, 60_000));
    assert.deepEqual(leased.map((i) => i.id), ['plain']);
    await assert.rejects(runFenced(stale, () => q.ack('plain', leased[0].token)), StaleLeaseError);
    assert.equal((await q.items()).length, 1, 'the stale ack removed nothing');
    assert.equal(await runFenced(current, () => q.ack('plain', leased[0].token)), true);
    assert.equal((await q.items()).length, 0);
    await Promise.all([store.close(), reread.close(), l.close(), q.close()]);
    await leases.close();
  } finally {
    await db.close();
  }
});

test('locks: a fenced write in flight lets its holder renew, and holds a takeover back until it commits', async () => {
  const url = await pg.createDatabase();
  const dbName = new URL(url).pathname.slice(1);
  const db = new Database({ url: new Secret(url), application: 'outpost-test' });
  const a = new PgLeaseBackend(db, 60_000);
  const b = new PgLeaseBackend(db, 60_000);
  try {
    await migrate(db);
    const held = await a.acquire('singleton', 'ctl_a0000000', 60_000);
    assert.equal(held?.epoch, 1);
    const fence: Fence = { lease: 'singleton', epoch: 1, holder: 'ctl_a0000000', valid: () => true };
    let commit!: () => void;
    const committed = new Promise<void>((r) => (commit = r));
    let checked!: () => void;
    const inFlight = new Promise<void>((r) => (checked = r));
    const write = db.tx(async (c) => {
      assert.equal((await validFences(c, [fence])).size, 1);
      checked();
      await committed;
    });
    await inFlight;
    // The renewal passes the write's lock at once (it waited for every write in flight before).
    const renewed = await Promise.race([a.renew('singleton', 'ctl_a0000000', 1, 60_000), sleep(3000).then(() => 'waited' as const)]);
    assert.ok(renewed !== 'waited' && renewed?.epoch === 1, `renewal: ${JSON.stringify(renewed)}`);
    // Expired meanwhile (as if its holder had stopped renewing): the takeover waits for the write.
    await pg.sql(dbName, "UPDATE outpost_leases SET expires_at = now() - interval '1 second'");
    let tookAt = 0;
    const takeover = b.acquire('singleton', 'ctl_b0000000', 60_000).then((r) => ((tookAt = Date.now()), r));
    await sleep(500);
    assert.equal(tookAt, 0, 'the takeover waited for the write in flight');
    const commitAt = Date.now();
    commit();
    await write;
    const took = await takeover;
    assert.equal(took?.epoch, 2);
    assert.ok(tookAt >= commitAt);
    // And a holder that is not expired is not even locked by others' tries: their acquire answers at once.
    const again = await Promise.race([a.acquire('singleton', 'ctl_a0000000', 60_000), sleep(3000).then(() => 'waited' as const)]);
    assert.equal(again, undefined);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await db.close();
  }
});
