/**
 * The prober on three controllers sharing one real PostgreSQL 15 (test/e2e/lib/postgres.ts), as on
 * one: A holds the singleton lease (round decisions, callbacks), the probing agents are linked to B
 * and C, and monitors are made through B and C.
 *
 * - a monitor added through a controller that is not the holder is probed, decided by the holder and
 *   called back; changed and stopped through another, every controller lists the same monitors (a
 *   change through one controller a moment after the monitor was made through another finds it);
 *   an agent's probing state answers through a controller it is not linked to;
 * - results from agents linked to B and to C count in the holder's rounds (both answers in every
 *   decided round: nobody missing);
 * - kill -9 of the holder: a survivor takes over and callbacks resume within 10 s + a round, with
 *   every round of the monitor called back once (one delivery id per round, none twice), the rounds
 *   probed while nobody held the lease included;
 * - the killed controller back: it lists the same monitors.
 * Prints how long a monitor made on B takes to be listed on A (the state log's propagation, which
 * agents' results ride too) and the callback gap over the kill.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestAgent, TestController, stopProc, until } from '../helpers/cluster.ts';
import { startReceiver } from './lib/receiver.ts';
import { holder as lease } from './lib/lease.ts';
import { closedPort, postForm, startTarget } from '../prober-fixtures.ts';
import { controllersOn, postgresForFile } from './lib/postgres.ts';

const pg = postgresForFile();

const INTERVAL = 2;
const GRACE_MS = 1000;
const TTL_MS = 6000;

/** The controller holding the lease among cs. */
const holder = async (cs: TestController[], what: string, timeoutMs = 20_000) => (await lease(cs, what, timeoutMs)).c;

/** A controller's monitors as configured (not their states, which follow the rounds), keyed by group. */
async function monitors(c: TestController): Promise<Record<string, unknown>> {
  const r = await c.api('GET', '/api/v1/prober/groups');
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(r.body.groups.map((g: any) => [`${g.app_name}:${g.group_id}`, { level: g.level, protocol: g.protocol, port: g.port, interval: g.interval, records: g.records.map((x: any) => `${x.record_id}=${x.ip}`), probe_nodes: [...g.probe_nodes].sort() }]));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

test('prober on three controllers: monitors made anywhere, results from agents linked anywhere, callbacks resumed after kill -9 of the holder', async () => {
  const url = await pg.createDatabase();
  const [target, closed, rx] = await Promise.all([startTarget(), closedPort(), startReceiver()]);
  const config = {
    plugins: { prober: { apps: { shop: { callbackUrl: `${rx.url}/cb`, callbackFormat: 'json' } }, minInterval: INTERVAL, graceMs: GRACE_MS } },
    webhooks: { baseDelayMs: 200, maxDelayMs: 400 },
    cluster: { leaseTtlMs: TTL_MS },
  };
  const adminToken = `opa_test_prober_${Date.now().toString(36)}`;
  const start = controllersOn(pg, url, { config, adminToken });
  const a = await start();
  const cs = [a];
  const agents: TestAgent[] = [];
  try {
    assert.equal(await holder([a], 'A holds the lease'), a);
    cs.push(await start(), await start());
    const [, b, c] = cs;
    assert.equal(await holder(cs, 'one holder of three'), a, 'A keeps the lease while B and C start');
    agents.push(await TestAgent.start(b, { name: 'probe-b', plugins: { prober: {} } }), await TestAgent.start(c, { name: 'probe-c', plugins: { prober: {} } }));
    for (const x of cs) {
      await until(`both agents live probe nodes on ${x.url}`, async () => (await x.api('GET', '/api/v1/prober/groups')).body?.probe_nodes?.filter((n: any) => n.live).length === 2, 30_000);
    }

    // ---- a monitor added through B (not the holder), one through C ----
    const up = await postForm(`${b.url}/operate_monitor`, { app_name: 'shop', group_id: 1, record_ids: '11', ips: '127.0.0.1', protocol: 'tcp', port: target.port, interval: INTERVAL, timeout: 1, level: 4 });
    assert.equal(up.body.code, 1000, JSON.stringify(up.body));
    const down = await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: 2, record_ids: '21', ips: '127.0.0.1', protocol: 'tcp', port: closed, interval: INTERVAL, timeout: 1, level: 4 });
    assert.equal(down.body.code, 1000, JSON.stringify(down.body));

    const callbacks = (gid: number) => rx.requests.filter((r) => r.path === '/hook/cb' && r.json?.group_id === gid);
    await until('callbacks for the monitors made on B and C, sent by the holder', () => callbacks(1).length >= 2 && callbacks(2).length >= 2, 40_000, 100);

    // Both agents' answers count in the holder's rounds: each decided by two answers, nobody missing.
    for (const [gid, state] of [[1, 'up'], [2, 'down']] as const) {
      const full = await until(`a round of group ${gid} decided with the answers of the agents on B and C`, async () => {
        const res = (await a.api('GET', `/api/v1/prober/results?group=shop:${gid}`)).body.results as any[];
        return res.find((e) => e.records[0].received === 2 && e.missing.length === 0 && !e.degraded);
      }, 30_000, 200);
      assert.deepEqual([...full.nodes].sort(), ['probe-b', 'probe-c']);
      assert.equal(full.records[0].state, state);
      assert.equal(full.records[0].failures, state === 'down' ? 2 : 0);
      // The other controllers list the rounds the holder decided.
      for (const x of [b, c]) await until(`round ${full.timestamp} of group ${gid} listed on ${x.url}`, async () => ((await x.api('GET', `/api/v1/prober/results?group=shop:${gid}`)).body.results as any[]).some((e) => e.timestamp === full.timestamp), 5000, 50);
    }
    // An agent's probing state through a controller it is not linked to (the command is forwarded).
    const viaA = await a.api('GET', `/api/v1/prober/nodes/${agents[0].nodeId}`);
    assert.equal(viaA.status, 200, viaA.text);
    assert.equal(viaA.body.node, 'probe-b');
    const cb = callbacks(2).at(-1)!;
    assert.deepEqual(cb.json.result, [{ record_id: '21', status: '2', res_time: cb.json.result[0].res_time }]);
    assert.match(String(cb.headers['x-outpost-delivery']), /^prober:round:shop:2:\d+$/);

    // ---- changed through A, stopped through C; every controller lists the same ----
    const third = await postForm(`${b.url}/operate_monitor`, { app_name: 'shop', group_id: 3, record_ids: '31:32', ips: '127.0.0.1:127.0.0.2', protocol: 'tcp', port: target.port, interval: INTERVAL, timeout: 1 });
    assert.equal(third.body.code, 1000);
    const updated = await postForm(`${a.url}/update_monitor`, { app_name: 'shop', group_id: 3, record_id: '32', ip: '127.0.0.3' });
    assert.equal(updated.body.code, 1000, JSON.stringify(updated.body));
    const same = async (xs: TestController[], what: string, want?: string[]) =>
      until(what, async () => {
        const all = await Promise.all(xs.map(monitors));
        const first = JSON.stringify(all[0]);
        return all.every((m) => JSON.stringify(m) === first) && (!want || JSON.stringify(Object.keys(all[0]).sort()) === JSON.stringify(want)) ? all[0] : undefined;
      }, 5000, 50);
    const listed = await same(cs, 'the same monitors on A, B and C', ['shop:1', 'shop:2', 'shop:3']);
    assert.deepEqual((listed['shop:3'] as any).records, ['31=127.0.0.1', '32=127.0.0.3']);
    assert.deepEqual((listed['shop:1'] as any).probe_nodes, ['probe-b', 'probe-c']);
    const stopped = await postForm(`${c.url}/stop_monitor`, { app_name: 'shop', group_id: 3 });
    assert.equal(stopped.body.code, 1000);
    await same(cs, 'group 3 gone from every controller', ['shop:1', 'shop:2']);

    // ---- propagation: a monitor made on B, listed on A ----
    const delays: number[] = [];
    for (let i = 0; i < 40; i++) {
      const gid = 100 + i;
      const made = await postForm(`${b.url}/operate_monitor`, { app_name: 'shop', group_id: gid, record_ids: '1', ips: '127.0.0.1', protocol: 'tcp', port: target.port, interval: 60, timeout: 1 });
      assert.equal(made.body.code, 1000);
      const t0 = performance.now();
      await until(`group ${gid} listed on A`, async () => (await a.api('GET', '/api/v1/prober/groups')).body.groups.some((g: any) => g.group_id === gid), 5000, 2);
      delays.push(performance.now() - t0);
    }
    for (let i = 0; i < 40; i++) assert.equal((await postForm(`${c.url}/stop_monitor`, { app_name: 'shop', group_id: 100 + i })).body.code, 1000);
    delays.sort((x, y) => x - y);

    // ---- kill -9 of the holder ----
    const lastBefore = Math.max(...callbacks(1).map((r) => r.json.timestamp));
    await stopProc(a.proc, 'SIGKILL');
    const killedAt = Date.now();
    const survivors = [b, c];
    const next = await holder(survivors, 'a survivor holds the lease', 20_000);
    const tookOver = Date.now() - killedAt;
    const resumed = await until('a callback from the survivor', () => callbacks(1).find((r) => r.at > killedAt && r.json.timestamp > lastBefore), 10_000 + 4 * INTERVAL * 1000 + GRACE_MS + 10_000, 50);
    const gap = resumed.at - killedAt;
    assert.ok(gap <= 10_000 + INTERVAL * 1000 + GRACE_MS + 1000, `callbacks resumed ${gap} ms after the kill`);
    // A monitor made through the new holder's peer after the takeover is decided too.
    const other = survivors.find((x) => x !== next)!;
    const late = await postForm(`${other.url}/operate_monitor`, { app_name: 'shop', group_id: 4, record_ids: '41', ips: '127.0.0.1', protocol: 'tcp', port: target.port, interval: INTERVAL, timeout: 1 });
    assert.equal(late.body.code, 1000);
    await until('callbacks for a monitor made after the takeover', () => callbacks(4).length >= 1, 30_000, 100);
    // Every round of group 1 from the first callback on: called back once, under one delivery id.
    const settled = Math.max(...callbacks(1).map((r) => r.json.timestamp));
    const byRound = new Map<number, Set<string>>();
    const attempts = new Map<string, number>();
    for (const r of callbacks(1)) {
      const id = String(r.headers['x-outpost-delivery']);
      (byRound.get(r.json.timestamp) ?? byRound.set(r.json.timestamp, new Set()).get(r.json.timestamp)!).add(id);
      attempts.set(id, (attempts.get(id) ?? 0) + 1);
    }
    const rounds = [...byRound.keys()].sort((x, y) => x - y);
    const missingRounds: number[] = [];
    for (let t = rounds[0]; t <= settled; t += INTERVAL) if (!byRound.has(t)) missingRounds.push(t);
    assert.deepEqual(missingRounds, [], `every round called back (${rounds.length} rounds, around the kill at ${Math.floor(killedAt / 1000)})`);
    for (const [t, ids] of byRound) assert.equal(ids.size, 1, `round ${t}: one delivery id, got ${[...ids].join(', ')}`);
    const twice = [...attempts].filter(([, n]) => n > 1);
    // At most the attempt in flight at the kill goes out again (same id: receivers dedupe).
    assert.ok(twice.length <= 1, `delivered more than once: ${JSON.stringify(twice)}`);

    // ---- the killed controller back: it lists the same monitors ----
    await a.boot();
    await same(cs, 'the same monitors on all three once A is back', ['shop:1', 'shop:2', 'shop:4']);
    assert.equal(await holder(cs, 'one holder with A back'), next, 'A comes back as a member');

    console.log(`prober-controllers: a monitor made on B listed on A after p50 ${percentile(delays, 50).toFixed(1)} ms, p99 ${percentile(delays, 99).toFixed(1)} ms (${delays.length} monitors); kill -9 of the holder: takeover ${(tookOver / 1000).toFixed(1)} s, callbacks resumed ${(gap / 1000).toFixed(1)} s after the kill (ttl ${TTL_MS / 1000} s, ${INTERVAL} s rounds); ${rounds.length} rounds called back once each, ${twice.length} attempt(s) repeated`);
  } finally {
    await Promise.all(agents.map((x) => x.stop()));
    for (const x of cs) await x.stop();
    await Promise.all([target.close(), rx.close()]);
  }
});
