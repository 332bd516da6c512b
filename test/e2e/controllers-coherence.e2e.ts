/**
 * Three controllers on one real PostgreSQL 15 see each other's writes without writing themselves
 * (PgStore's NOTIFY, each controller's LISTEN connection, runtime/storage/postgres/store-listener.ts):
 * a node enrolled through A is listed by B and C and its agent links to B (B knows its credential's
 * node); a join token made on A enrolls through B, and a one-use token raced on A and B enrolls once;
 * a webhook subscribed on a controller that does not hold the lease is delivered by the holder; a
 * plugin config PUT on A is served by B, which pushes it to the agent linked there; a token revoked
 * on A is refused by B; a node deleted on A cannot link to B again; the admin token rotated by the
 * CLI is the one every running controller takes; every LISTEN connection killed
 * (pg_terminate_backend) → the controllers reconnect and catch up on what was written meanwhile.
 * Prints the propagation delay (write answered on A → visible on B) over 200 writes.
 * And the fan-out window: an event recorded by a controller that died before queueing its webhook
 * deliveries, with the shared fan-out position moved past it by another controller, is delivered
 * once by the lease holder when that controller's presence goes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tempDir, TestAgent, TestController, until } from '../helpers/cluster.ts';
import { startReceiver } from './lib/receiver.ts';
import { browser, csrfOf } from '../helpers/browser.ts';
import { forwarder } from './lib/forwarder.ts';
import { controllersOn, postgresForFile } from './lib/postgres.ts';
import { statusOf as status } from './lib/lease.ts';
import { EventLog } from '../../controller/event-log.ts';
import { createEventBus } from '../../runtime/events.ts';
import { openControllerStorage } from '../../runtime/storage/controller-storage.ts';
import { StoreConfig } from '../../runtime/storage/store-config.ts';
import { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import { createLog } from '../../plugins/sdk/log.ts';

const pg = postgresForFile();

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

test('three controllers on one database see each other\'s writes: nodes, tokens, webhooks, plugin configs; the LISTEN connection killed and back', async () => {
  const url = await pg.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const rx = await startReceiver();
  const fwd = await forwarder();
  const adminToken = `opa_test_coherence_${Date.now().toString(36)}`;
  const config = { webhooks: { baseDelayMs: 200, maxDelayMs: 400 }, cluster: { leaseTtlMs: 6000 } };
  const start = controllersOn(pg, url, { config, adminToken });
  const a = await start();
  const cs = [a, await start(), await start()];
  const [, b, c] = cs;
  let agent: TestAgent | undefined;
  try {
    // ---- a node enrolled through A: listed by B and C, its agent links to B ----
    fwd.to(a.port);
    agent = await TestAgent.start({ url: fwd.url, joinToken: () => a.joinToken() } as unknown as TestController, { name: 'coherent-node' });
    const nodeId = agent.nodeId;
    for (const x of [b, c]) await until(`the node enrolled on A listed by ${x.url}`, async () => (await x.api('GET', '/api/v1/nodes')).body?.nodes?.some((n: any) => n.id === nodeId && n.name === 'coherent-node'), 5000, 20);
    fwd.to(b.port);
    const bId = (await status(b)).controller.id;
    await until('the agent linked to B (B accepted its credential)', async () => (await status(a)).controllers?.find((x: any) => x.id === bId)?.nodes?.includes(nodeId), 20_000);

    // ---- join tokens: made on A, used on B; a one-use token raced on A and B enrolls once ----
    const tokenA = await a.joinToken({ uses: 1 });
    const viaB = await b.api('POST', '/api/v1/enroll', { token: tokenA, name: 'enrolled-on-b' }, undefined);
    assert.equal(viaB.status, 201, `a token made on A enrolls through B: ${viaB.text}`);
    for (let i = 0; i < 5; i++) {
      const token = await a.joinToken({ uses: 1 });
      // B has to know the token before the race means anything (else B refuses it as unknown).
      const id = token.slice(4, 16);
      await until('B knows the token', async () => (await b.api('GET', '/api/v1/tokens')).body?.tokens?.some((t: any) => t.id === id), 5000, 10);
      const race = await Promise.all([a, b].map((x, j) => x.api('POST', '/api/v1/enroll', { token, name: `race-${i}-${j}` }, undefined)));
      const codes = race.map((r) => r.status).sort();
      assert.deepEqual(codes, [201, 401], `one of two enrollments with a one-use token succeeds (round ${i}): ${race.map((r) => r.text).join(' | ')}`);
      await until('C counts the one use', async () => {
        const t = (await c.api('GET', '/api/v1/tokens')).body?.tokens?.find((x: any) => x.id === id);
        return t?.uses === 1 && t.usesLeft === 0 && t.state === 'used-up';
      }, 5000, 20);
    }
    const revoked = await a.joinToken({ uses: 5 });
    assert.equal((await a.api('DELETE', `/api/v1/tokens/${revoked.slice(4, 16)}`)).status, 200);
    await until('a token revoked on A is refused by B', async () => (await b.api('POST', '/api/v1/enroll', { token: revoked, name: 'revoked-one' }, undefined)).status === 401, 5000, 20);

    // ---- a webhook subscribed on a controller that does not hold the lease fires from the holder ----
    const statuses = await Promise.all(cs.map(status));
    const holderIdx = statuses.findIndex((s) => s.lease?.held);
    assert.ok(holderIdx >= 0, 'a lease holder');
    const holder = cs[holderIdx];
    const other = cs[(holderIdx + 1) % 3];
    const sub = await other.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'] });
    assert.equal(sub.status, 201, sub.text);
    // Recorded on the subscriber too: a subscription starts after the event seq of the controller it
    // was made on, and each controller's event log counts its own seqs (see the report / operations.md).
    const ping = await other.api('POST', '/api/v1/events/test', { message: 'coherent ping' });
    assert.equal(ping.status, 202, ping.text);
    await rx.waitFor('test.ping', (r) => r.json?.data?.message === 'coherent ping', 15_000);
    assert.ok((await holder.api('GET', '/api/v1/webhooks')).body.webhooks.some((w: any) => w.id === sub.body.id), 'the holder lists it');

    // ---- a plugin config PUT on A: served by B and C, pushed by B to the agent linked there ----
    const put = await a.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 7, diskInterval: 30 });
    assert.equal(put.status, 200, put.text);
    for (const x of [b, c]) await until(`${x.url} serves the config`, async () => (await x.api('GET', '/api/v1/plugins/server-stats/config')).body?.config?.interval === 7, 5000, 20);
    await until('the agent linked to B got the config pushed', async () => {
      const state = JSON.parse(await readFile(join(agent!.dataDir, 'state.json'), 'utf8').catch(() => '{}'));
      return state.pushed?.['server-stats']?.interval === 7;
    }, 10_000);

    // ---- every LISTEN connection killed: the controllers reconnect and take in what was written meanwhile ----
    const listeners = () => pg.sql<{ pid: number }>(database, "SELECT pid FROM pg_stat_activity WHERE application_name = 'outpost-controller-listen'");
    assert.equal((await listeners()).length, 3, 'one LISTEN connection per controller');
    const killed = await pg.sql<{ ok: boolean }>(database, "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'outpost-controller-listen'");
    assert.equal(killed.filter((k) => k.ok).length, 3);
    const whileAway = await a.joinToken({ uses: 3 });
    const awayId = whileAway.slice(4, 16);
    // Well before the 30 s safety-net check: the reconnect's catch-up brings it.
    await until('B and C hold the token written while they were not listening', async () => {
      const seen = await Promise.all([b, c].map(async (x) => (await x.api('GET', '/api/v1/tokens')).body?.tokens?.some((t: any) => t.id === awayId)));
      return seen.every(Boolean);
    }, 10_000, 20);
    for (const x of cs) assert.match(x.proc.output(), /lost the connection listening to other controllers' store changes; reconnecting/);
    await until('three LISTEN connections again', async () => (await listeners()).length === 3, 10_000);

    // ---- propagation delay: a token created on A (answered) until B lists it ----
    const delays: number[] = [];
    for (let i = 0; i < 200; i++) {
      const r = await a.api('POST', '/api/v1/tokens', { ttl: '10m', uses: 1 });
      assert.equal(r.status, 201);
      const answered = performance.now();
      const id = r.body.id;
      await until('B lists the token', async () => (await b.api('GET', `/api/v1/tokens`)).body?.tokens?.some((t: any) => t.id === id), 5000, 1);
      delays.push(performance.now() - answered);
    }
    delays.sort((x, y) => x - y);

    // The node's enrollment event was recorded once across the controllers (those that saw it
    // pending in the nodes store left it to A, which announced it), well past the 5 s they wait;
    // the event log is one for all, so each lists it once, under the same id and seq.
    const enrolledEvents = await Promise.all(cs.map(async (x) => (await x.api('GET', '/api/v1/events?limit=1000')).body.events.filter((e: any) => e.event === 'node.enrolled' && e.data?.node?.id === nodeId)));
    assert.deepEqual(enrolledEvents.map((l) => l.length), [1, 1, 1], 'node.enrolled recorded once, listed by every controller');
    assert.equal(new Set(enrolledEvents.map((l) => `${l[0].id}/${l[0].seq}`)).size, 1);

    // ---- a node deleted on A: B closes its link and refuses it afterwards ----
    assert.equal((await a.api('DELETE', `/api/v1/nodes/${nodeId}`)).status, 200);
    for (const x of [b, c]) await until(`${x.url} no longer lists the deleted node`, async () => !(await x.api('GET', '/api/v1/nodes')).body?.nodes?.some((n: any) => n.id === nodeId), 5000, 20);
    await agent.proc.waitFor(/revoked this node|rejected this agent credential/, 15_000);
    // Its reconnects are refused by B (the node's credential is B's to check).
    await b.proc.waitFor(/link rejected/, 15_000);

    // ---- the admin token rotated in the database (the CLI, a process of its own): every running controller takes it ----
    const rotate = run(['admin-token', 'rotate', '--data', a.dataDir, '--json'], { OUTPOST_STORE_URL: url });
    assert.equal(await rotate.exited, 0, rotate.output());
    const fresh = JSON.parse(rotate.output().slice(rotate.output().indexOf('{'))).token as string;
    for (const x of cs) {
      await until(`${x.url} refuses the old admin token`, async () => (await x.api('GET', '/api/v1/nodes')).status === 401, 5000, 20);
      assert.equal((await x.api('GET', '/api/v1/nodes', undefined, fresh)).status, 200, `${x.url} takes the new one`);
    }

    console.log(`controllers-coherence: a write on A visible on B after p50 ${percentile(delays, 50).toFixed(1)} ms, p99 ${percentile(delays, 99).toFixed(1)} ms, max ${delays[delays.length - 1].toFixed(1)} ms over ${delays.length} token creations (answer on A → listed by B, polled every ~1 ms over HTTP)`);
  } finally {
    await agent?.stop();
    for (const x of cs) await x.stop();
    await Promise.all([rx.close(), fwd.close()]);
  }
});

test('dashboard sessions on one database: signed in on A, the cookie works on B; signed out on B, refused on A', async () => {
  const url = await pg.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const adminToken = `opa_test_sessions_${Date.now().toString(36)}`;
  const start = controllersOn(pg, url, { adminToken });
  const a = await start();
  const b = await start();
  try {
    const onA = browser(a.url);
    const onB = browser(b.url);
    const cookie = await onA.signIn(adminToken);
    // The page a sign-in redirects to, answered by the other controller at once (it reads what changed on a cookie it does not know).
    const home = await onB.go('GET', '/', { cookie });
    assert.equal(home.status, 200);
    const csrf = csrfOf(home.text);
    assert.equal(csrfOf((await onA.go('GET', '/', { cookie })).text), csrf, 'one session, one CSRF token on every controller');
    assert.equal((await onB.go('GET', '/dashboard/fragment', { cookie })).status, 200);
    assert.equal((await onB.go('GET', '/api/v1/nodes', { cookie })).status, 200, 'the REST takes the session on B too');
    // Only a hash of the session token is in the database.
    const token = cookie.split('=')[1];
    const rows = await pg.sql<{ entry: string; data: string }>(database, "SELECT entry, data FROM outpost_store_rows WHERE store LIKE '%sessions%' AND entry <> ''");
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.ok(!JSON.stringify(rows).includes(token) && !JSON.stringify(rows).includes(csrf), 'neither the token nor its CSRF token stored');

    const out = await onB.go('POST', '/logout', { cookie, form: { csrf }, headers: { origin: b.url } });
    assert.equal(out.status, 303);
    const outAt = performance.now();
    await until('A refuses the session signed out on B', async () => (await onA.go('GET', '/dashboard/fragment', { cookie })).status === 401, 2000, 2);
    const lag = performance.now() - outAt;
    assert.equal((await onA.go('GET', '/api/v1/nodes', { cookie })).status, 401);
    assert.match((await onA.go('GET', '/', { cookie })).text, /<form method="post" action="\/login">/);
    console.log(`controllers-coherence: a sign-out on B refused on A after ${lag.toFixed(1)} ms`);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('an event recorded by a controller that died before fanning it out, passed by another controller\'s fan-out, is delivered once by the holder when the dead one\'s presence goes, and not again when the lease moves', async () => {
  const url = await pg.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const rx = await startReceiver();
  const adminToken = `opa_test_fanout_${Date.now().toString(36)}`;
  const a = await controllersOn(pg, url, { config: { webhooks: { baseDelayMs: 200, maxDelayMs: 400 } }, adminToken })();
  let b: TestController | undefined;
  const root = await tempDir('outpost-gone-');
  const quiet = createLog('gone', 'silent');
  const storage = await openControllerStorage(StoreConfig.parse({ kind: 'postgres', url }), join(root, 'data'), { health: new StorageHealth(), log: quiet, env: {} });
  try {
    await until('A holds the lease', async () => (await status(a)).lease?.held === true, 15_000);
    const sub = await a.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'] });
    assert.equal(sub.status, 201, sub.text);
    // Another controller, alive as far as presence says (its row expires in 4 s, never renewed).
    await pg.sql(database, `INSERT INTO outpost_presence (controller, links, info, nodes, rev, expires_at) VALUES ('ctl_gone00000', '[]', '{}', '{}', 1, now() + interval '4 seconds')`);
    await until('A sees the other controller', async () => (await status(a)).controllers?.some((c: any) => c.id === 'ctl_gone00000'), 5000);
    // It records an event in the shared log and dies before its fan-out queues the deliveries.
    const gone = await EventLog.open(join(root, 'data'), { bus: createEventBus(() => undefined), log: quiet });
    const [lost] = await gone.record([{ event: 'test.ping', data: { message: 'lost' } }]);
    await gone.close();
    // A records and fans out a later event: the shared fan-out position passes the lost one.
    assert.equal((await a.api('POST', '/api/v1/events/test', { message: 'after' })).status, 202);
    const [q] = await pg.sql<{ checkpoint: number }>(database, "SELECT checkpoint FROM outpost_queues WHERE name LIKE '%webhook%'");
    assert.ok(q && q.checkpoint > lost.seq, `the fan-out position (${q?.checkpoint}) is past the lost event (${lost.seq})`);
    // The other controller's presence expires: the holder queues what recent events of others would deliver.
    const got = await rx.waitFor('test.ping', (r) => r.json?.id === lost.id, 20_000);
    assert.equal(got.json.data.message, 'lost');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(rx.requests.filter((r) => r.json?.id === lost.id).length, 1, 'delivered once');

    // The lease moves to B: its catch-up at the term's start finds those deliveries delivered by A
    // (it reads A's "delivered" records before judging an id new) and sends nothing again.
    b = await controllersOn(pg, url, { config: { webhooks: { baseDelayMs: 200, maxDelayMs: 400 } }, adminToken })();
    await a.stop();
    await until('B holds the lease', async () => (await status(b!)).lease?.held === true, 15_000);
    assert.equal((await b.api('POST', '/api/v1/events/test', { message: 'on B' })).status, 202);
    await rx.waitFor('test.ping', (r) => r.json?.data?.message === 'on B', 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    const ids = rx.requests.filter((r) => r.json?.event === 'test.ping').map((r) => r.headers['x-outpost-delivery'] ?? r.json?.id);
    assert.equal(new Set(ids).size, ids.length, `no delivery repeated across the lease move: ${ids.join(' ')}`);
  } finally {
    await storage.close();
    await rm(root, { recursive: true, force: true });
    await a.stop();
    await b?.stop();
    await rx.close();
  }
});
