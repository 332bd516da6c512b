/**
 * dns-sync against a real PowerDNS (test/e2e/lib/pdns.ts), answers checked with dig.
 *
 * 1. The core alone (liveness given to each pass): lines answered by dig, a death moves exactly the
 *    dead node's lines, recovery waits for upAfter, a quiet pass writes nothing (SOA serial stable, no
 *    PATCH in PowerDNS' log), hand-made drift is repaired, a wrong API key is reported without the key.
 * 2. The plugin on a controller and three agent processes with the default watchdog (2 s beats, down
 *    after 3 missed): SIGKILL an agent and its lines answer a survivor within 10 s; back up, they return
 *    only once it has been up for upAfter; a quiet period leaves the serial alone; in Chromium, the DNS
 *    panel shows the lines and "Re-sync now" repairs drift made by hand.
 */
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from './lib/chromium.ts';
import { sleep, TestAgent, TestController, until } from '../helpers/cluster.ts';
import assert from 'node:assert/strict';
import { startPdns, type Pdns } from './lib/pdns.ts';
import { dnsSyncConfig } from '../../plugins/dns-sync/config.ts';
import { createProviders } from '../../plugins/dns-sync/providers/index.ts';
import { runPass, type PassInput } from '../../plugins/dns-sync/reconcile.ts';
import type { Liveness } from '../../plugins/dns-sync/nodes.ts';

const ZONE = 'example.test';
const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '192.0.2.3';
const A6 = '2001:db8::1';

function setup(pdns: Pdns, apiKey = pdns.apiKey) {
  const cfg = dnsSyncConfig.parse({
    providers: { 'pdns-main': { type: 'pdns', url: pdns.url, apiKey, serverId: pdns.serverId } },
    services: [
      { serviceName: 'web', domain: ZONE, record: 'www', platformProvider: 'pdns-main', ttl: 60 },
      { serviceName: 'apex', domain: ZONE, record: '@', platformProvider: 'pdns-main', ttl: 30 },
    ],
    nodes: {
      a: { ISPs: ['default', 'CT'], networkType: 'Both', address: A, address6: A6 },
      b: { ISPs: ['CU', 'CMCC'], address: B },
      c: { ISPs: ['default', 'OverSea'], address: C },
    },
  });
  return { cfg, providers: createProviders(cfg.providers) };
}

let clock = Date.now();
const up = (forMs = 3_600_000): Liveness => ({ up: true, since: clock - forMs });
const down = (): Liveness => ({ up: false, since: clock });

function pass(s: ReturnType<typeof setup>, watchdog: Record<string, Liveness>): Promise<Awaited<ReturnType<typeof runPass>>> {
  const input: PassInput = { services: s.cfg.services, nodes: s.cfg.nodes, providers: s.providers, liveness: { watchdog }, now: clock, upAfterMs: 30_000, backoff: s.cfg.retry };
  return runPass(input);
}

async function answers(pdns: Pdns): Promise<Record<string, string>> {
  const names = ['www', 'telecom.www', 'unicom.www', 'mobile.www', 'oversea.www', '', 'telecom', 'unicom', 'mobile', 'oversea'];
  const out: Record<string, string> = {};
  for (const n of names) {
    const fq = n ? `${n}.${ZONE}` : ZONE;
    out[n || '@'] = (await pdns.dig(fq, 'A')).join(',');
  }
  out['www AAAA'] = (await pdns.dig(`www.${ZONE}`, 'AAAA')).join(',');
  return out;
}

test('real PowerDNS: lines follow the nodes, and nothing is written without cause', async (t) => {
  const pdns = await startPdns();
  t.after(() => pdns.stop());
  await pdns.createZone(ZONE);
  const s = setup(pdns);

  const first = await pass(s, { a: up(), b: up(), c: up() });
  assert.deepEqual(first.failures, []);
  assert.deepEqual(await answers(pdns), {
    www: A, 'telecom.www': A, 'unicom.www': B, 'mobile.www': B, 'oversea.www': C,
    '@': A, telecom: A, unicom: B, mobile: B, oversea: C,
    'www AAAA': A6,
  });
  assert.equal(pdns.apiRequests('PATCH'), 1, 'one PATCH for the whole zone');

  // Quiet: nothing differs, nothing is written, the serial does not move.
  const serial = await pdns.soaSerial(ZONE);
  clock += 60_000;
  const quiet = await pass(s, { a: up(), b: up(), c: up() });
  assert.equal(quiet.written, 0);
  assert.equal(quiet.unchanged, first.decisions.length);
  assert.equal(await pdns.soaSerial(ZONE), serial);
  assert.equal(pdns.apiRequests('PATCH'), 1);

  // b dies: exactly its lines move, to the first default server by name (a), in one PATCH.
  clock += 10_000;
  const death = await pass(s, { a: up(), b: down(), c: up() });
  assert.deepEqual(death.switched.map((e) => `${e.service} ${e.line} ${e.from}->${e.to}`).sort(), ['apex mobile b->a', 'apex unicom b->a', 'web mobile b->a', 'web unicom b->a']);
  assert.equal(death.written, 4);
  const afterDeath = await answers(pdns);
  assert.deepEqual([afterDeath['unicom.www'], afterDeath['mobile.www'], afterDeath.unicom, afterDeath.mobile], [A, A, A, A]);
  assert.equal(afterDeath['oversea.www'], C, 'other lines untouched');
  assert.equal(await pdns.soaSerial(ZONE), serial + 1);

  // b is back but not for upAfter: nothing moves. Once it has been, its lines come back.
  clock += 10_000;
  assert.equal((await pass(s, { a: up(), b: up(5_000), c: up() })).written, 0);
  assert.equal((await answers(pdns))['unicom.www'], A);
  clock += 30_000;
  const back = await pass(s, { a: up(), b: up(35_000), c: up() });
  assert.equal(back.switched.length, 4);
  assert.ok(back.switched.every((e) => e.to === 'b' && e.from === 'a'));
  assert.equal((await answers(pdns))['mobile.www'], B);
  assert.equal(await pdns.soaSerial(ZONE), serial + 2);

  // Nobody alive: the records keep their values, no write, alerts.
  const dark = await pass(s, { a: down(), b: down(), c: down() });
  assert.equal(dark.written, 0);
  assert.equal(dark.alerts.length, dark.decisions.length);
  assert.equal((await answers(pdns))['oversea.www'], C);
  assert.equal(await pdns.soaSerial(ZONE), serial + 2);
});

test('real PowerDNS: drift made by hand is repaired; a wrong API key is reported without the key', async (t) => {
  const pdns = await startPdns();
  t.after(() => pdns.stop());
  await pdns.createZone(ZONE);
  const s = setup(pdns);
  await pass(s, { a: up(), b: up(), c: up() });

  const res = await fetch(`${pdns.url}/api/v1/servers/localhost/zones/${ZONE}.`, {
    method: 'PATCH',
    headers: { 'X-API-Key': pdns.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ rrsets: [{ name: `unicom.www.${ZONE}.`, type: 'A', ttl: 60, changetype: 'REPLACE', records: [{ content: '198.51.100.9', disabled: false }, { content: B, disabled: false }] }] }),
  });
  assert.equal(res.status, 204);
  assert.deepEqual((await pdns.dig(`unicom.www.${ZONE}`)).sort(), [B, '198.51.100.9'].sort());
  const repair = await pass(s, { a: up(), b: up(), c: up() });
  assert.equal(repair.written, 1);
  assert.equal(repair.repaired.length, 1, 'the holder (b) did not change: a repair, not a switch');
  assert.deepEqual(await pdns.dig(`unicom.www.${ZONE}`), [B]);

  const wrong = setup(pdns, 'wrong-api-key-0000');
  const serial = await pdns.soaSerial(ZONE);
  const r = await pass(wrong, { a: up(), b: down(), c: up() });
  assert.equal(r.written, 0);
  assert.equal(r.failures.length, r.decisions.length);
  assert.equal(r.failures[0].error, `provider "pdns-main" (pdns): GET zone ${ZONE}.: HTTP 401 Unauthorized (wrong apiKey?)`);
  assert.ok(!JSON.stringify(r).includes(pdns.apiKey) && !JSON.stringify(r).includes('wrong-api-key-0000'));
  assert.equal(await pdns.soaSerial(ZONE), serial);
});

test('real PowerDNS with a controller and three agents: SIGKILL moves lines within 10 s, back after upAfter, quiet serial, re-sync from the dashboard', async (t) => {
  const pdns = await startPdns();
  t.after(() => pdns.stop());
  await pdns.createZone(ZONE);
  const UP_AFTER_S = 8;
  // The default watchdog: the 10 s deadline is measured against it.
  const c = await TestController.start({ config: { heartbeat: { intervalMs: 2000, downAfter: 3, upAfter: 2 }, plugins: { prober: { apps: {} }, 'dns-sync': {} } } });
  const agents: Record<string, TestAgent> = {};
  const profile = await mkdtemp(join(tmpdir(), 'outpost-chromium-'));
  t.after(async () => {
    for (const a of Object.values(agents)) await a.stop();
    await c.stop();
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });
  const self = (ISPs: string[], address: string) => ({ 'dns-sync': { self: { ISPs, address } } });
  agents.a = await TestAgent.start(c, { name: 'edge-a', plugins: self(['default', 'CT'], A) });
  agents.b = await TestAgent.start(c, { name: 'edge-b', plugins: self(['CU', 'CMCC'], B) });
  agents.c = await TestAgent.start(c, { name: 'edge-c', plugins: { 'dns-sync': {} } });
  const put = await c.api('PUT', '/api/v1/plugins/dns-sync/config', {
    cocoaSecret: 'cocoa-secret-of-the-e2e-test',
    providers: { pdns: { type: 'pdns', url: pdns.url, apiKey: pdns.apiKey } },
    services: [{ serviceName: 'web', domain: ZONE, record: 'www', platformProvider: 'pdns', ttl: 60 }],
    nodes: { 'edge-c': { ISPs: ['default', 'OverSea'], address: C } },
    upAfter: UP_AFTER_S,
  });
  assert.equal(put.status, 200, put.text);
  const dig = async (name: string) => (await pdns.dig(`${name}.${ZONE}`, 'A')).join(',');

  await until('every line on its owner', async () => (await dig('telecom.www')) === A && (await dig('unicom.www')) === B && (await dig('mobile.www')) === B && (await dig('oversea.www')) === C, 60_000, 500);
  assert.ok([A, C].includes(await dig('www')));

  // Quiet, once every node has been up for upAfter and an evaluation followed: a minute of heartbeats
  // and a reconcile (every 60 s) write nothing.
  await until('settled', async () => {
    const since = Math.max(...(await Promise.all(Object.values(agents).map((a) => c.node(a.nodeId)))).map((n) => n.since));
    const s = (await c.api('GET', '/api/v1/dns-sync/status')).body;
    return s.pendingWrites === 0 && s.lastPass?.at >= since + UP_AFTER_S * 1000;
  }, 30_000, 500);
  await sleep(1000);
  const serial = await pdns.soaSerial(ZONE);
  const patches = pdns.apiRequests('PATCH');
  await sleep(61_000);
  assert.equal(await pdns.soaSerial(ZONE), serial, 'SOA serial stable');
  assert.equal(pdns.apiRequests('PATCH'), patches);
  assert.ok(pdns.apiRequests('GET') > 0);

  // SIGKILL edge-b: its lines answer edge-a (a default server) within 10 s.
  const t0 = Date.now();
  await agents.b.kill('SIGKILL');
  await until('unicom and mobile answer edge-a', async () => (await dig('unicom.www')) === A && (await dig('mobile.www')) === A, 15_000, 50);
  const failoverMs = Date.now() - t0;
  assert.ok(failoverMs <= 10_000, `failover took ${failoverMs} ms`);
  assert.equal(await dig('oversea.www'), C, 'other lines untouched');
  t.diagnostic(`failover: SIGKILL → dig answers the survivor in ${failoverMs} ms`);

  // Back: nothing moves until edge-b has been up for upAfter.
  await agents.b.restart();
  const node = await until('edge-b up', async () => {
    const n = await c.node(agents.b.nodeId);
    return n?.state === 'up' && n.since ? n : undefined;
  }, 30_000, 200);
  const early = node.since + UP_AFTER_S * 1000 - 1500 - Date.now();
  if (early > 0) await sleep(early);
  assert.equal(await dig('unicom.www'), A, 'not back before upAfter');
  await until('unicom and mobile back on edge-b', async () => (await dig('unicom.www')) === B && (await dig('mobile.www')) === B, 20_000, 200);
  assert.ok(Date.now() >= node.since + UP_AFTER_S * 1000);

  // Drift by hand, then "Re-sync now" in the dashboard repairs it (no reconcile in between to beat it to it).
  const slow = await c.api('PUT', '/api/v1/plugins/dns-sync/config', { ...(await c.api('GET', '/api/v1/plugins/dns-sync/config')).body.config, reconcileInterval: 3600 });
  assert.equal(slow.status, 200, slow.text);
  const res = await fetch(`${pdns.url}/api/v1/servers/localhost/zones/${ZONE}.`, {
    method: 'PATCH',
    headers: { 'X-API-Key': pdns.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ rrsets: [{ name: `oversea.www.${ZONE}.`, type: 'A', ttl: 60, changetype: 'REPLACE', records: [{ content: '198.51.100.7', disabled: false }] }] }),
  });
  assert.equal(res.status, 204);
  assert.equal(await dig('oversea.www'), '198.51.100.7');
  const ctx = await launchChromium(profile);
  t.after(() => ctx.close());
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(c.url);
  await page.getByLabel('Admin token').fill(c.adminToken);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  const panel = page.locator('#p-dns-sync');
  await panel.locator('tr[data-line="pdns:www.example.test/unicom/A"][data-node="edge-b"]').waitFor({ timeout: 30_000 });
  await panel.getByRole('button', { name: 'Re-sync every DNS line now' }).click();
  await until('drift repaired', async () => (await dig('oversea.www')) === C, 15_000, 200);
  await page.locator('#dns-sync-resync-result pre').filter({ hasText: '"written": 1' }).waitFor({ timeout: 15_000 });
  assert.doesNotMatch(await page.content(), /cocoa-secret-of-the-e2e-test/);
  assert.ok(!(await page.content()).includes(pdns.apiKey));
  assert.deepEqual(problems, []);
});
