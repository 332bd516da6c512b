/**
 * dns-sync's halves on the real runner (plugins/sdk/testing), with the dry-run provider and a
 * PowerDNS API on loopback (test/dns-sync-api-server.ts): the agent declares itself and the
 * controller's entry wins; a node's down moves its lines at once (events, writes) and its up brings
 * them back only after upAfter; a quiet period writes nothing; prober verdicts count; a failing
 * provider's lines go to the durable retry queue, are shown, and are written once it answers; a line
 * no node can serve raises one alert; the config stays on the controller; nothing secret anywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsSync from '../plugins/dns-sync/index.ts';
import prober from '../plugins/prober/index.ts';
import { testPlugin, type PluginHarness } from '../plugins/sdk/testing/index.ts';
import type { DnsSyncConfigInput } from '../plugins/dns-sync/config.ts';
import { startApiServer, type Answer, type SeenRequest } from './dns-sync-api-server.ts';

type H = PluginHarness<typeof dnsSync.spec>;
const T0 = Date.UTC(2024, 0, 1);
const HOUR = 3_600_000;
const COCOA = 'cocoa-secret-for-the-plugin-test';

/** node-1 is the harness's agent (its link goes up and down); node-2 is another enrolled node, up for an hour. */
const others = [{ id: 'n2', name: 'node-2', state: 'up' as const, connected: true, lastHeartbeat: T0, since: T0 - HOUR, address: '127.0.0.2' }];

function config(extra: Partial<DnsSyncConfigInput> = {}): DnsSyncConfigInput {
  return {
    cocoaSecret: COCOA,
    providers: { dry: { type: 'dry-run' } },
    services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'dry' }],
    nodes: { 'node-2': { ISPs: ['default', 'CU'], address: '192.0.2.2' } },
    upAfter: 30,
    ...extra,
  };
}

async function start(opts: { config?: DnsSyncConfigInput; agentConfig?: DnsSyncConfigInput; withProber?: boolean } = {}): Promise<H> {
  return testPlugin({
    plugin: dnsSync,
    config: opts.config ?? config(),
    agentConfig: opts.agentConfig ?? { self: { ISPs: ['CT'], address: '192.0.2.1' } },
    node: { id: 'n1', name: 'node-1', address: '127.0.0.1' },
    others,
    now: T0,
    with: [{ plugin: prober, config: {} }],
  });
}

const status = async (h: H) => (await h.inject({ method: 'GET', url: '/api/v1/dns-sync/status' })).json;
/** line → node, for the A lines of web. */
async function holders(h: H): Promise<Record<string, string | null>> {
  const s = await status(h);
  return Object.fromEntries(s.lines.filter((l: { recordType: string }) => l.recordType === 'A').map((l: { line: string; node: string | null }) => [l.line, l.node]));
}
const switched = (h: H) => h.events.filter((e) => e.event === 'dns.switched').map((e) => e.payload as { line: string; from: string | null; to: string; name: string; address: string });

test('the agent declares itself; lines follow the watchdog: down moves them at once, up brings them back after upAfter', async () => {
  const h = await start();
  try {
    await h.settle();
    assert.deepEqual(h.reports.map((r) => [r.type, r.data]), [['declared', { self: { ISPs: ['CT'], networkType: 'IPV4', address: '192.0.2.1' } }]]);
    // node-1 (declared by its agent: CT) has just come up; until it has been up for upAfter, node-2
    // (default, CU) serves every line, telecom as the default fallback.
    await h.until('an evaluation with the declaration', async () => (await holders(h)).telecom);
    assert.deepEqual(await holders(h), { default: 'node-2', telecom: 'node-2', unicom: 'node-2' });
    await h.clock.tick(31_000, 1_000);
    await h.until('node-1 takes telecom once up for upAfter', async () => (await holders(h)).telecom === 'node-1');
    assert.deepEqual(await holders(h), { default: 'node-2', telecom: 'node-1', unicom: 'node-2' });
    const seen = switched(h).map((s) => `${s.line} ${s.from}->${s.to} ${s.name} ${s.address}`);
    assert.deepEqual([...seen.slice(0, 3).sort(), seen[3]], [
      'default null->node-2 www.example.test 192.0.2.2',
      'telecom null->node-2 telecom.www.example.test 192.0.2.2',
      'unicom null->node-2 unicom.www.example.test 192.0.2.2',
      'telecom node-2->node-1 telecom.www.example.test 192.0.2.1',
    ]);

    // Quiet: evaluations (reconcile every 60 s) write nothing.
    const writes = () => (h.inject({ method: 'GET', url: '/api/v1/dns-sync/status' }) as Promise<{ json: { dryRun: Array<{ records: Array<{ writes: number }> }> } }>).then((r) => r.json.dryRun[0].records.reduce((n, x) => n + x.writes, 0));
    const before = await writes();
    await h.clock.tick(180_000, 10_000);
    await h.until('three reconciles ran', async () => (await status(h)).lastPass.at >= T0 + 180_000);
    assert.equal(await writes(), before);
    assert.equal(switched(h).length, 4);

    // node-1's link drops: node.down → telecom moves to node-2 (a default server) right away.
    h.setNode('down');
    await h.until('telecom moved', async () => (await holders(h)).telecom === 'node-2');
    const moved = switched(h).at(-1)!;
    assert.equal(moved.from, 'node-1');
    assert.match((h.events.at(-1)!.payload as { reason: string }).reason, /node-1 is down; node-2 serves default/);
    assert.equal(h.metric('outpost_dns_sync_switches_total', { service: 'web', line: 'telecom' }), 3);

    // Back up: nothing moves for upAfter (30 s), then telecom returns to its owner.
    h.setNode('up');
    await h.clock.tick(20_000, 5_000);
    await h.until('an evaluation after the up', async () => (await status(h)).lastPass.at >= h.clock.now() - 20_000);
    assert.equal((await holders(h)).telecom, 'node-2', 'not before upAfter');
    await h.clock.tick(11_000, 1_000);
    await h.until('telecom back on node-1 after upAfter', async () => (await holders(h)).telecom === 'node-1');
    assert.equal(switched(h).at(-1)!.from, 'node-2');
    assert.match((h.events.at(-1)!.payload as { reason: string }).reason, /has been up for 30 s or more; it takes the line back/);
  } finally {
    await h.close();
  }
});
