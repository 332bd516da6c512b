/**
 * dns-sync's pdns provider, decision and writer against a real PowerDNS (test/e2e/lib/pdns.ts): lines
 * answered by dig, a death moves exactly the dead node's lines, recovery waits for upAfter, a quiet
 * pass writes nothing (SOA serial stable, no PATCH in PowerDNS' log), hand-made drift is repaired,
 * and a wrong API key is reported without the key. Node liveness is given to each pass directly: the
 * watchdog and agents come in with the plugin's wiring.
 */
import { test } from 'node:test';
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
