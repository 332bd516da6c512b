/**
 * A controller on a real PostgreSQL 15 (test/e2e/lib/postgres.ts): the usual work (enroll, webhooks,
 * a prober monitor with callbacks) with its state in the database, surviving kill -9; PostgreSQL
 * stopped under it (writes 503 naming the database, /readyz says why) and started again; the schema
 * migrated twice (the second run changes nothing) and a newer one refused; two controllers starting
 * together on a fresh database (one admin token, printed once); and a data dir carried to PostgreSQL
 * and back (`outpost store import` / `export`) with everything identical; a store's row count kept
 * by commits from two processes, and set right when found wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { TestAgent, TestController, run, stopProc, tempDir, until, http } from '../helpers/cluster.ts';
import { startReceiver } from './lib/receiver.ts';
import { JobsClient } from '../helpers/jobs-client.ts';
import { startTarget, postForm } from '../prober-fixtures.ts';
import { postgresForFile } from './lib/postgres.ts';
import { openLog } from '../../plugins/sdk/durable/log.ts';
import { readQueueFiles } from '../../plugins/sdk/durable/queue.ts';
import { migrate, SCHEMA_VERSION } from '../../runtime/storage/postgres/schema.ts';
import { Database } from '../../runtime/storage/postgres/database.ts';
import { PgContext } from '../../runtime/storage/postgres/context.ts';
import { PostgresBackend } from '../../runtime/storage/postgres/backend.ts';
import { Secret } from '../../plugins/sdk/secret.ts';
import { createLog } from '../../plugins/sdk/log.ts';

const pg = postgresForFile();

const INTERVAL = 5;

/** The state a controller shows through its API, without what changes on its own (liveness, clocks). */
async function surfaces(c: TestController): Promise<Record<string, unknown>> {
  const get = async (path: string) => {
    const r = await c.api('GET', path);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    return r.body;
  };
  const nodes = (await get('/api/v1/nodes')).nodes.map((n: any) => ({ id: n.id, name: n.name, labels: n.labels, address: n.address, enrolledAt: n.enrolledAt }));
  const tokens = (await get('/api/v1/tokens')).tokens.map(({ state: _s, ...t }: any) => t);
  const prober = await get('/api/v1/plugins/prober/config');
  const groups = (await get('/api/v1/prober/groups')).groups;
  const webhooks = (await get('/api/v1/webhooks')).webhooks;
  const deliveries = (await get('/api/v1/deliveries?limit=1000')).deliveries.map(({ nextAttemptAt: _n, ...d }: any) => d);
  const events = (await get('/api/v1/events?limit=1000')).events.filter((e: any) => !/^(node|plugin)\./.test(e.event));
  return { nodes, tokens, prober, groups, webhooks, deliveries, events };
}

function controllerEnv(url: string): Record<string, string> {
  return { OUTPOST_STORE_URL: url };
}

test('a controller on PostgreSQL: enroll, webhooks and a prober monitor; kill -9 loses nothing; its data dir holds no state', async () => {
  const url = await pg.createDatabase();
  const [target, rx] = await Promise.all([startTarget(), startReceiver()]);
  const c = await TestController.start({
    env: controllerEnv(url),
    config: { plugins: { 'server-stats': {}, prober: { apps: { shop: { callbackUrl: `${rx.url}/cb`, callbackSecret: 'pg-secret-1' } }, minInterval: 5, graceMs: 1500 } }, webhooks: { baseDelayMs: 100, maxDelayMs: 500 } },
  });
  let agent: TestAgent | undefined;
  try {
    agent = await TestAgent.start(c, { name: 'pg-node', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, prober: {} } });
    await until('node up', async () => (await c.node(agent!.nodeId))?.state === 'up', 30_000);
    const hook = await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping', 'node.down', 'node.up'], secret: 'hook-secret-0123456789' });
    assert.equal(hook.status, 201, hook.text);
    const ping = await c.api('POST', '/api/v1/events/test', { message: 'before the kill' });
    assert.equal(ping.status, 202, ping.text);
    await rx.waitFor('test.ping', (r) => r.json?.data?.message === 'before the kill', 30_000);
    await until('a live probe node', async () => (await c.api('GET', '/api/v1/prober/groups')).body?.probe_nodes?.some((n: any) => n.live), 30_000);
    const mon = await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: 7, record_ids: '701', ips: '127.0.0.1', interval: INTERVAL, timeout: 1, port: target.port, path: '/ok' });
    assert.equal(mon.body.code, 1000, JSON.stringify(mon.body));
    const callbacks = () => rx.requests.filter((r) => r.path === '/hook/cb').length;
    await until('a first prober callback', () => callbacks() >= 1, 30_000);

    // The stores, logs and queues are in the database, not in files: the controller's (events, the
    // webhook queue and its finished deliveries) and the plugins' (prober state, server-stats samples).
    // The controller may not even have made the dir.
    const files = (await readdir(c.dataDir, { recursive: true }).catch((err) => (err.code === 'ENOENT' ? [] : Promise.reject(err)))).map(String);
    const stateFiles = files.filter((f) => /\.json$/.test(f) || /\.(journal|snapshot)\.jsonl$/.test(f));
    assert.deepEqual(stateFiles, [], `no store files and no durable logs in the data dir (${files.join(', ')})`);
    const stores = (await pg.sql<{ name: string }>(new URL(url).pathname.slice(1), 'SELECT name FROM outpost_stores ORDER BY name')).map((r) => r.name);
    for (const s of ['controller', 'nodes', 'tokens', 'webhooks', 'plugins']) assert.ok(stores.includes(s), `store ${s} in PostgreSQL (${stores.join(', ')})`);
    const logs = (await pg.sql<{ name: string }>(new URL(url).pathname.slice(1), 'SELECT name FROM outpost_logs ORDER BY name')).map((r) => r.name);
    for (const l of ['events', 'webhook-finished', 'plugins/prober.state', 'plugins/server-stats.samples']) assert.ok(logs.includes(l), `log ${l} in PostgreSQL (${logs.join(', ')})`);
    const queues = (await pg.sql<{ name: string }>(new URL(url).pathname.slice(1), 'SELECT name FROM outpost_queues ORDER BY name')).map((r) => r.name);
    assert.ok(queues.includes('webhook-queue'), `the webhook queue in PostgreSQL (${queues.join(', ')})`);
    assert.ok((await pg.sql<{ checkpoint: number }>(new URL(url).pathname.slice(1), "SELECT checkpoint::integer AS checkpoint FROM outpost_queues WHERE name = 'webhook-queue'"))[0].checkpoint >= 1, 'the fan-out checkpoint is stored with the deliveries');
    const before = await surfaces(c);

    await c.restart('SIGKILL');
    await until('the agent relinked and is up', async () => (await c.node(agent!.nodeId))?.state === 'up' && (await c.node(agent!.nodeId))?.connected, 30_000);
    const afterKill = await surfaces(c);
    assert.deepEqual(afterKill.nodes, before.nodes);
    assert.deepEqual(afterKill.tokens, before.tokens);
    assert.deepEqual(afterKill.groups, before.groups);
    assert.deepEqual(afterKill.webhooks, before.webhooks);
    const seen = callbacks();
    await until('prober callbacks go on after the kill', () => callbacks() > seen, 30_000);
    const again = await c.api('POST', '/api/v1/events/test', { message: 'after the kill' });
    assert.equal(again.status, 202, again.text);
    await rx.waitFor('test.ping', (r) => r.json?.data?.message === 'after the kill', 30_000);
  } finally {
    await agent?.stop();
    await c.stop();
    await Promise.all([target.close(), rx.close()]);
  }
});

test('PostgreSQL stopped under a controller: writes answer 503 naming it, /readyz says why, reads still answer, an agent relinks; started again, everything resumes', async () => {
  const url = await pg.createDatabase();
  const rx = await startReceiver();
  const c = await TestController.start({ env: controllerEnv(url), config: { webhooks: { baseDelayMs: 100, maxDelayMs: 500 } } });
  let agent: TestAgent | undefined;
  try {
    // Enrolled with a join token's label the agent does not say itself: the record keeps it across hellos.
    const token = await c.joinToken({ labels: { isp: 'unicom' } });
    agent = await TestAgent.start(c, { name: 'steady', token });
    await until('node up', async () => (await c.node(agent!.nodeId))?.state === 'up', 30_000);
    assert.equal((await c.node(agent.nodeId))?.labels?.isp, 'unicom');
    assert.equal((await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'] })).status, 201);
    await pg.stop();
    try {
      const refused = await c.api('POST', '/api/v1/tokens', { ttl: '10m', uses: 1 });
      assert.equal(refused.status, 503, refused.text);
      assert.match(refused.body.error.message, /storage unavailable: .*PostgreSQL at 127\.0\.0\.1:\d+\/outpost_\w+.*retry once the database is reachable again/);
      assert.doesNotMatch(refused.text, new RegExp(pg.password), 'the password stays out of answers');
      const ping = await c.api('POST', '/api/v1/events/test', { message: 'while down' });
      assert.equal(ping.status, 503, ping.text);
      const ready = await until('/readyz says why', async () => {
        const r = await http('GET', `${c.url}/readyz`);
        return r.status === 503 && r.body?.storage?.length ? r : undefined;
      }, 10_000);
      assert.match(ready.body.storage[0].store, /^PostgreSQL at 127\.0\.0\.1:\d+\//);
      assert.match(ready.body.storage[0].code, /ECONNREFUSED|ECONNLOST|57P01/);
      assert.equal((await c.api('GET', '/api/v1/nodes')).status, 200, 'reads come from memory');
      // A link lost meanwhile comes back: a hello that changes nothing writes nothing.
      await stopProc(agent.proc, 'SIGKILL');
      await until('the node shown not linked', async () => (await c.node(agent!.nodeId))?.connected === false, 10_000);
      await agent.restart();
      await until('the agent linked again while the database is away', async () => (await c.node(agent!.nodeId))?.connected === true, 20_000);
      assert.doesNotMatch(c.proc.output(), new RegExp(pg.password), 'nor does it reach the logs');
    } finally {
      await pg.start();
    }
    await until('ready again', async () => (await http('GET', `${c.url}/readyz`)).status === 200, 20_000);
    const made = await c.api('POST', '/api/v1/tokens', { ttl: '10m', uses: 1 });
    assert.equal(made.status, 201, made.text);
    const ping = await c.api('POST', '/api/v1/events/test', { message: 'after the outage' });
    assert.equal(ping.status, 202, ping.text);
    await rx.waitFor('test.ping', (r) => r.json?.data?.message === 'after the outage', 30_000);
    assert.equal(rx.requests.filter((r) => r.json?.data?.message === 'while down').length, 0, 'what was refused was not recorded');
    const node = await c.node(agent.nodeId);
    assert.ok(node?.state === 'up' && node.connected, `the agent stayed linked and up: ${JSON.stringify(node)}`);
  } finally {
    await agent?.stop();
    await c.stop();
    await rx.close();
  }
});

test('outpost store migrate: the first run creates the schema, a second changes nothing; a newer schema is refused by migrate and by controllers', async () => {
  const url = await pg.createDatabase();
  const db = new URL(url).pathname.slice(1);
  const migrate = async () => {
    const p = run(['store', 'migrate', '--json'], { OUTPOST_STORE_URL: url });
    return { code: await p.exited, out: p.output() };
  };
  const first = await migrate();
  assert.equal(first.code, 0, first.out);
  assert.deepEqual(JSON.parse(first.out.slice(first.out.indexOf('{'))).applied, Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
  const state = async () => pg.sql(db, "SELECT version, migrated_at::text AS at, (SELECT count(*) FROM pg_tables WHERE tablename LIKE 'outpost_%') AS tables FROM outpost_schema");
  const once = await state();
  const second = await migrate();
  assert.equal(second.code, 0, second.out);
  assert.deepEqual(JSON.parse(second.out.slice(second.out.indexOf('{'))).applied, []);
  assert.deepEqual(await state(), once, 'nothing changed');

  // A database of release 1 (queues without a checkpoint, no lease or presence tables, logs without a version, stores without a row count) gets the later migrations alone, its queues kept.
  await pg.sql(db, "INSERT INTO outpost_queues (name, seq) VALUES ('old', 41)");
  await pg.sql(db, 'ALTER TABLE outpost_queues DROP COLUMN checkpoint');
  await pg.sql(db, 'DROP TABLE outpost_leases, outpost_presence');
  await pg.sql(db, 'ALTER TABLE outpost_logs DROP COLUMN version, DROP COLUMN dropped');
  await pg.sql(db, 'ALTER TABLE outpost_stores DROP COLUMN rows');
  await pg.sql(db, 'UPDATE outpost_schema SET version = 1');
  const upgrade = await migrate();
  assert.equal(upgrade.code, 0, upgrade.out);
  assert.deepEqual(JSON.parse(upgrade.out.slice(upgrade.out.indexOf('{'))).applied, [2, 3, 4, 5, 6]);
  assert.deepEqual(await pg.sql(db, "SELECT seq::integer AS seq, checkpoint::integer AS checkpoint FROM outpost_queues WHERE name = 'old'"), [{ seq: 41, checkpoint: 0 }]);

  await pg.sql(db, 'UPDATE outpost_schema SET version = 99');
  const refused = await migrate();
  assert.equal(refused.code, 1);
  assert.match(refused.out, new RegExp(`has Outpost schema version 99, newer than this Outpost knows \\(${SCHEMA_VERSION}\\)`));
  const dir = await tempDir('outpost-pg-newer-');
  try {
    const p = run(['controller', '--port', '0', '--data', join(dir, 'data')], { OUTPOST_STORE_URL: url });
    assert.equal(await p.exited, 1);
    assert.match(p.output(), new RegExp(`outpost: the database at 127\\.0\\.0\\.1:\\d+/\\w+ has Outpost schema version 99, newer than this Outpost knows \\(${SCHEMA_VERSION}\\)`));
    assert.doesNotMatch(p.output(), new RegExp(pg.password));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('two controllers starting at once on a fresh database: one admin token, printed once, valid on both; rotated in the database by the CLI', async () => {
  const url = await pg.createDatabase();
  const dirs = [await tempDir('outpost-pg-a-'), await tempDir('outpost-pg-b-')];
  const env = { OUTPOST_STORE_URL: url, OUTPOST_ADMIN_TOKEN: '' };
  const procs = dirs.map((d) => run(['controller', '--port', '0', '--data', join(d, 'data')], env));
  try {
    const urls = await Promise.all(procs.map(async (p) => (await p.waitFor(/Outpost controller (http:\/\/\S+)/, 60_000))[1]));
    await new Promise((r) => setTimeout(r, 500));
    const printed = procs.flatMap((p) => [...p.output().matchAll(/Admin token \(shown once; store it now\): (\S+)/g)].map((m) => m[1]));
    assert.equal(printed.length, 1, `one admin token printed in all: ${printed.length}`);
    for (const u of urls) assert.equal((await http('GET', `${u}/api/v1/nodes`, { token: printed[0] })).status, 200, `the token works on ${u}`);

    // Rotated in the database: a controller started after that takes the new one.
    const rotate = run(['admin-token', 'rotate', '--data', join(dirs[0], 'data'), '--json'], { OUTPOST_STORE_URL: url });
    assert.equal(await rotate.exited, 0, rotate.output());
    const fresh = JSON.parse(rotate.output().slice(rotate.output().indexOf('{'))).token as string;
    await stopProc(procs[0]);
    procs[0] = run(['controller', '--port', '0', '--data', join(dirs[0], 'data')], env);
    const restarted = (await procs[0].waitFor(/Outpost controller (http:\/\/\S+)/, 60_000))[1];
    assert.equal((await http('GET', `${restarted}/api/v1/nodes`, { token: fresh })).status, 200);
    assert.equal((await http('GET', `${restarted}/api/v1/nodes`, { token: printed[0] })).status, 401);
    assert.doesNotMatch(procs[0].output(), /Admin token \(shown once/, 'no new token printed at a restart');
  } finally {
    await Promise.all(procs.map((p) => stopProc(p)));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
});

/** What a data dir holds, as data: every store's JSON and every log's records in order. */
async function dirContents(dir: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const f of (await readdir(dir, { recursive: true })).map(String).sort()) {
    if (f.endsWith('.json')) out[f] = JSON.parse(await readFile(join(dir, f), 'utf8'));
    else if (f.endsWith('.history.jsonl')) out[f] = (await readFile(join(dir, f), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    else if (f.endsWith('.journal.jsonl')) {
      const name = f.replace(/\.journal\.jsonl$/, '');
      const records: unknown[] = [];
      const [base, sub] = [name.slice(name.lastIndexOf('/') + 1), join(dir, name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '')];
      const l = await openLog(base, z.unknown(), { dir: sub, readOnly: true, load: (r) => void records.push(r), snapshot: () => [] });
      const kind = l.stats().kind;
      await l.close();
      // A queue is compared by what it holds: its files may say it with other records (an export writes one record per item).
      out[name] = kind === 'queue' ? { kind, contents: await readQueueFiles(base, sub) } : { kind, records };
    }
  }
  return out;
}

test('a lowdb data dir imported into PostgreSQL and exported back: every store, log and queue identical; a controller on each shows the same', async () => {
  const [target, rx] = await Promise.all([startTarget(), startReceiver()]);
  const config = { plugins: { 'server-stats': {}, prober: { apps: { shop: { callbackUrl: `${rx.url}/cb`, callbackSecret: 'roundtrip-1' } }, minInterval: 5 }, jobs: {} }, webhooks: { baseDelayMs: 100, maxDelayMs: 500 } };
  const c = await TestController.start({ config });
  const work = await tempDir('outpost-pg-roundtrip-');
  let agent: TestAgent | undefined;
  let pgc: TestController | undefined;
  let back: TestController | undefined;
  try {
    // Some of everything on a lowdb controller.
    agent = await TestAgent.start(c, { name: 'travels', labels: { zone: 'a' }, plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, prober: {} } });
    await c.joinToken({ uses: 3, labels: { batch: 'x' } });
    assert.equal((await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'], secret: 'hook-roundtrip-0123456789' })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await c.api('POST', '/api/v1/events/test', { message: `m${i}` })).status, 202);
    await until('a live probe node', async () => (await c.api('GET', '/api/v1/prober/groups')).body?.probe_nodes?.some((n: any) => n.live), 30_000);
    assert.equal((await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: 9, record_ids: '901:902', ips: '127.0.0.1:127.0.0.1', interval: INTERVAL, timeout: 1, port: target.port, path: '/ok' })).body.code, 1000);
    await until('deliveries done', async () => (await c.api('GET', '/api/v1/deliveries?state=delivered&limit=1000')).body.deliveries.length >= 3, 30_000);
    // A jobs application and a task due in an hour: it waits in the jobs plugin's queue.
    const app = await new JobsClient(c).createApp({ appName: 'travelling', linkUrl: `${rx.url}/job` });
    const taskId = await new JobsClient(c).createTask(app, { taskNo: 'later-1', content: { n: 1 }, runtime: new Date(Date.now() + 3_600_000).toISOString() });
    const task = await new JobsClient(c).task(app, taskId);
    await agent.stop();
    agent = undefined;
    await stopProc(c.proc);
    const original = await dirContents(c.dataDir);

    const url = await pg.createDatabase();
    const imp = run(['store', 'import', '--data', c.dataDir, '--json'], { OUTPOST_STORE_URL: url });
    assert.equal(await imp.exited, 0, imp.output());
    const report = JSON.parse(imp.output().slice(imp.output().indexOf('{')));
    assert.ok(report.stores >= 5 && report.logs >= 5 && report.queues >= 2, imp.output());
    assert.match((await (async () => {
      const again = run(['store', 'import', '--data', c.dataDir], { OUTPOST_STORE_URL: url });
      await again.exited;
      return again.output();
    })()), /already holds Outpost data/, 'import only into a fresh database');

    const exported = join(work, 'exported');
    const exp = run(['store', 'export', '--data', exported], { OUTPOST_STORE_URL: url });
    assert.equal(await exp.exited, 0, exp.output());
    assert.deepEqual(await dirContents(exported), original, 'files → PostgreSQL → files: identical');

    // A controller on the database and one on the exported dir show what the original showed.
    pgc = await TestController.start({ env: controllerEnv(url), config, adminToken: c.adminToken });
    const onPg = await surfaces(pgc);
    assert.deepEqual(await new JobsClient(pgc).task(app, taskId), task, 'the jobs task on PostgreSQL');
    await pgc.stop();
    pgc = undefined;
    back = await TestController.start({ dataDir: join(exported), config, adminToken: c.adminToken });
    const onFiles = await surfaces(back);
    assert.deepEqual(await new JobsClient(back).task(app, taskId), task, 'the jobs task after the round trip');
    assert.deepEqual(onPg, onFiles);
    assert.ok((onFiles.nodes as unknown[]).length === 1 && (onFiles.groups as unknown[]).length === 1 && (onFiles.webhooks as unknown[]).length === 1);
    assert.ok((onFiles.events as unknown[]).length >= 3 && (onFiles.deliveries as unknown[]).length >= 3);
  } finally {
    await agent?.stop();
    await pgc?.stop();
    await back?.stop().catch(() => undefined);
    await c.stop();
    await rm(work, { recursive: true, force: true });
    await Promise.all([target.close(), rx.close()]);
  }
});

test('a store\'s row count is kept by every commit; one left wrong (an older release committed) is set right by the next full read', async () => {
  const url = await pg.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const db = new Database({ url: new Secret(url), application: 'outpost-test' });
  const quiet = createLog('rows-test', 'silent');
  const a = new PostgresBackend(new PgContext(db, 'test-a', quiet, undefined));
  const b = new PostgresBackend(new PgContext(db, 'test-b', quiet, undefined));
  const count = async () => (await pg.sql<{ rows: number; n: number }>(database, "SELECT rows::int, (SELECT count(*)::int FROM outpost_store_rows WHERE store = 'counted') AS n FROM outpost_stores WHERE name = 'counted'"))[0];
  try {
    await migrate(db);
    const sa = await a.openStore<{ m: Record<string, number> }>('counted', { m: {} });
    await sa.update((d) => Object.assign(d.m, { x: 1, y: 2, z: 3 }));
    const sb = await b.openStore<{ m: Record<string, number> }>('counted', { m: {} });
    await sb.update((d) => void delete d.m.y);
    await sa.update((d) => void (d.m.w = 4));
    assert.deepEqual(await count(), { rows: 4, n: 4 }, 'adds and deletes from two processes counted (x, z, w and the field\'s own row)');
    // Left wrong: the next catch-up cannot trust it, reads every key, and sets it right.
    await pg.sql(database, "UPDATE outpost_stores SET rows = 99 WHERE name = 'counted'");
    await sb.update((d) => void delete d.m.x);
    await sa.update((d) => void (d.m.v = 5));
    assert.deepEqual({ ...sa.data.m }, { z: 3, w: 4, v: 5 }, 'the delete made elsewhere was seen');
    assert.deepEqual(await count(), { rows: 4, n: 4 }, 'set right by the full read, then kept by the commit after it');
    await Promise.all([sa.close(), sb.close()]);
  } finally {
    await db.close();
  }
});
