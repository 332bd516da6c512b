/**
 * The writer (read → compare → write only what differs → read back, failures as retry items) and a
 * whole evaluation (runPass): switches on a death, nothing in a quiet period, drift repaired, retries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dnsSyncConfig } from '../plugins/dns-sync/config.ts';
import { createProviders } from '../plugins/dns-sync/providers/index.ts';
import { DryRunProvider } from '../plugins/dns-sync/providers/dry-run.ts';
import { PdnsProvider } from '../plugins/dns-sync/providers/pdns.ts';
import type { DnsProvider, LineRead, LineRef, LineWrite, WriteOutcome } from '../plugins/dns-sync/providers/provider.ts';
import { syncLines, type DesiredLine } from '../plugins/dns-sync/writer.ts';
import { runPass, type PassInput } from '../plugins/dns-sync/reconcile.ts';
import type { Liveness } from '../plugins/dns-sync/nodes.ts';
import { pdnsApi, PDNS_KEY } from './dns-sync-api-server.ts';

const BACKOFF = { baseDelay: 2, factor: 2, jitter: 0.2, maxDelay: 120 };
/** random() = 0.5 puts the jitter at zero, so delays are exact. */
const MID = () => 0.5;

const ref = (line: LineRef['line']): LineRef => ({ domain: 'example.test', record: 'www', line, type: 'A' });
const desired = (line: LineRef['line'], value: string, extra: Partial<DesiredLine> = {}): DesiredLine => ({
  key: `p:${line}`, service: 'web', ref: ref(line), values: [value], ttl: 60, from: null, to: 'a', reason: 'test', attempt: 0, ...extra,
});

/** Counts calls of a provider it wraps, and can break reads, writes, or drop writes silently. */
class Probe implements DnsProvider {
  reads = 0;
  writes: LineWrite[][] = [];
  failRead = false;
  failWrite = false;
  dropWrites = false;
  constructor(private readonly inner: DnsProvider) {}
  get name() {
    return this.inner.name;
  }
  get type() {
    return this.inner.type;
  }
  get nativeLines() {
    return this.inner.nativeLines;
  }
  async read(refs: LineRef[]): Promise<Map<string, LineRead>> {
    this.reads++;
    const out = await this.inner.read(refs);
    if (this.failRead) for (const k of out.keys()) out.set(k, { ok: false, error: 'provider "p" (dry-run): read broken on purpose' });
    return out;
  }
  async write(writes: LineWrite[]): Promise<WriteOutcome[]> {
    this.writes.push(writes);
    if (this.failWrite) return writes.map(() => ({ ok: false, error: 'provider "p" (dry-run): write broken on purpose' }));
    if (this.dropWrites) return writes.map(() => ({ ok: true }));
    return this.inner.write(writes);
  }
}

const dry = () => new DryRunProvider('p', { type: 'dry-run', lineName: '{line}.{record}' });

test('writes only the lines that differ, then nothing while nothing changes', async () => {
  const p = new Probe(dry());
  const first = await syncLines(p, [desired('default', '192.0.2.1'), desired('telecom', '192.0.2.2', { from: 'b', to: 'a' })], BACKOFF, MID);
  assert.equal(first.written, 2);
  assert.deepEqual(first.switched, [
    { service: 'web', line: 'default', recordType: 'A', from: null, to: 'a', reason: 'test' },
    { service: 'web', line: 'telecom', recordType: 'A', from: 'b', to: 'a', reason: 'test' },
  ]);
  assert.equal(p.reads, 2, 'one read before, one read-back after');

  const again = await syncLines(p, [desired('default', '192.0.2.1'), desired('telecom', '192.0.2.2')], BACKOFF, MID);
  assert.deepEqual({ written: again.written, unchanged: again.unchanged, switched: again.switched.length }, { written: 0, unchanged: 2, switched: 0 });
  assert.equal(p.writes.length, 1, 'no write call at all when nothing differs');

  // Only the TTL differs: written, and reported as a repair (the node did not change).
  const ttl = await syncLines(p, [desired('default', '192.0.2.1', { ttl: 300, from: 'a' })], BACKOFF, MID);
  assert.equal(ttl.written, 1);
  assert.equal(ttl.repaired.length, 1);
  assert.equal(ttl.switched.length, 0);
});

test('a failed read, write or read-back comes back as a retry item with its attempt count, error and delay', async () => {
  const p = new Probe(dry());
  p.failRead = true;
  const r1 = await syncLines(p, [desired('default', '192.0.2.1')], BACKOFF, MID);
  assert.equal(p.writes.length, 0, 'nothing is written on a line that could not be read');
  assert.deepEqual(r1.failures, [{ key: 'p:default', service: 'web', provider: 'p', line: 'default', recordType: 'A', attempt: 1, error: 'provider "p" (dry-run): read broken on purpose', retryInMs: 2000 }]);

  p.failRead = false;
  p.failWrite = true;
  const r2 = await syncLines(p, [desired('default', '192.0.2.1', { attempt: 1 })], BACKOFF, MID);
  assert.equal(r2.failures[0].attempt, 2);
  assert.equal(r2.failures[0].retryInMs, 4000);
  assert.equal(r2.failures[0].error, 'provider "p" (dry-run): write broken on purpose');
  assert.equal(r2.switched.length, 0);

  p.failWrite = false;
  p.dropWrites = true;
  const r3 = await syncLines(p, [desired('default', '192.0.2.1', { attempt: 9 })], BACKOFF, MID);
  assert.equal(r3.failures[0].attempt, 10);
  assert.equal(r3.failures[0].retryInMs, 120_000, 'capped at maxDelay');
  assert.equal(r3.failures[0].error, 'provider "p" (dry-run): read-back of www default A shows nothing (ttl ?), wanted 192.0.2.1 (ttl 60)');
  assert.equal(r3.switched.length, 0, 'a line is switched only once the read-back shows it');
});

const NOW = 1_800_000_000_000;
const up: Liveness = { up: true, since: NOW - 3_600_000 };
const down: Liveness = { up: false, since: NOW - 1_000 };

function cluster(providers: Record<string, unknown> = { p: { type: 'dry-run' } }) {
  const cfg = dnsSyncConfig.parse({
    providers,
    services: [
      { serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'p' },
      { serviceName: 'api', domain: 'example.test', record: 'api', platformProvider: 'p', ttl: 30 },
    ],
    nodes: {
      a: { ISPs: ['default', 'CT'], address: '192.0.2.1' },
      b: { ISPs: ['default', 'CU'], address: '192.0.2.2' },
      c: { ISPs: ['CMCC'], address: '192.0.2.3' },
    },
  });
  return { cfg, providers: createProviders(cfg.providers) };
}

const input = (c: ReturnType<typeof cluster>, watchdog: Record<string, Liveness>, extra: Partial<PassInput> = {}): PassInput => ({
  services: c.cfg.services, nodes: c.cfg.nodes, providers: c.providers, liveness: { watchdog }, now: NOW, upAfterMs: 30_000, backoff: BACKOFF, ...extra,
});

test('a pass: the first one points every line, a death moves exactly its lines, a quiet pass writes nothing', async () => {
  const c = cluster();
  const first = await runPass(input(c, { a: up, b: up, c: up }));
  assert.equal(first.written, 8, '2 services × 4 lines');
  assert.equal(first.failures.length, 0);
  assert.deepEqual(first.switched.filter((s) => s.service === 'web').map((s) => `${s.line}:${s.from}->${s.to}`), ['default:null->a', 'telecom:null->a', 'unicom:null->b', 'mobile:null->c']);

  const death = await runPass(input(c, { a: up, b: up, c: down }));
  assert.equal(death.written, 2, 'one line per service');
  assert.deepEqual(death.switched, [
    { service: 'web', line: 'mobile', recordType: 'A', from: 'c', to: 'a', reason: 'c is down; a serves default (no live node serves mobile)' },
    { service: 'api', line: 'mobile', recordType: 'A', from: 'c', to: 'a', reason: 'c is down; a serves default (no live node serves mobile)' },
  ]);
  const dryRun = c.providers.get('p') as DryRunProvider;
  const { writtenAt, ...mobile } = dryRun.records().find((r) => r.name === 'mobile.api.example.test')!;
  assert.ok(writtenAt > 0);
  assert.deepEqual(mobile, { name: 'mobile.api.example.test', ref: { domain: 'example.test', record: 'api', line: 'mobile', type: 'A' }, values: ['192.0.2.1'], ttl: 30, writes: 2 });

  const quiet = await runPass(input(c, { a: up, b: up, c: down }));
  assert.deepEqual({ written: quiet.written, unchanged: quiet.unchanged, switched: quiet.switched.length }, { written: 0, unchanged: 8, switched: 0 });
  assert.ok(quiet.timing.decideMs >= 0 && quiet.timing.readMs >= 0 && quiet.timing.writeMs >= 0);

  // Back, but not for upAfter yet: nothing moves. Then it has been: its lines come back.
  assert.equal((await runPass(input(c, { a: up, b: up, c: { up: true, since: NOW - 5_000 } }))).written, 0);
  const back = await runPass(input(c, { a: up, b: up, c: { up: true, since: NOW - 30_000 } }));
  assert.deepEqual(back.switched.map((s) => `${s.service} ${s.line} ${s.from}->${s.to}`), ['web mobile a->c', 'api mobile a->c']);
});

test('no live node: nothing is written, the lines keep their values, an alert per line', async () => {
  const c = cluster();
  await runPass(input(c, { a: up, b: up, c: up }));
  const dark = await runPass(input(c, { a: down, b: down, c: down }));
  assert.equal(dark.written, 0);
  assert.equal(dark.alerts.length, 8);
  const values = (c.providers.get('p') as DryRunProvider).records().map((r) => r.values[0]);
  assert.deepEqual([...new Set(values)].sort(), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
});

test('drift made by hand is repaired by the next pass (an unknown value is a switch, a TTL change a repair)', async () => {
  const c = cluster();
  await runPass(input(c, { a: up, b: up, c: up }));
  const p = c.providers.get('p')!;
  await p.write([{ ref: { domain: 'example.test', record: 'www', line: 'unicom', type: 'A' }, values: ['198.51.100.9'], ttl: 60 }]);
  await p.write([{ ref: { domain: 'example.test', record: 'api', line: 'default', type: 'A' }, values: ['192.0.2.1'], ttl: 999 }]);
  const r = await runPass(input(c, { a: up, b: up, c: up }));
  assert.equal(r.written, 2);
  assert.deepEqual(r.switched.map((s) => `${s.service} ${s.line} ${s.from}->${s.to}`), ['web unicom 198.51.100.9->b']);
  assert.deepEqual(r.repaired.map((d) => `${d.service} ${d.ref.line} ttl ${d.ttl}`), ['api default ttl 30']);
});

test('a retry acts on its lines only and carries the attempt count', async () => {
  const c = cluster();
  const p = new Probe(c.providers.get('p')!);
  const providers = new Map([['p', p as DnsProvider]]);
  p.failWrite = true;
  const failed = await runPass(input(c, { a: up, b: up, c: up }, { providers }));
  assert.equal(failed.failures.length, 8);
  const item = failed.failures.find((f) => f.service === 'web' && f.line === 'telecom')!;
  assert.deepEqual({ attempt: item.attempt, key: item.key }, { attempt: 1, key: 'p:www.example.test/telecom/A' });

  p.failWrite = false;
  p.writes.length = 0;
  const retry = await runPass(input(c, { a: up, b: up, c: up }, { providers, only: new Set([item.key]), attempts: new Map([[item.key, item.attempt]]) }));
  assert.deepEqual(p.writes.map((w) => w.map((x) => `${x.ref.record} ${x.ref.line}`)), [['www telecom']]);
  assert.equal(retry.switched.length, 1);
  assert.equal(retry.decisions.length, 8, 'every line is still decided (for status)');
});

test('through the pdns provider: a quiet pass sends no PATCH at all, a death sends one', async () => {
  const server = await pdnsApi([]);
  try {
    const c = cluster({ p: { type: 'pdns', url: server.url, apiKey: PDNS_KEY } });
    assert.ok(c.providers.get('p') instanceof PdnsProvider);
    await runPass(input(c, { a: up, b: up, c: up }));
    const patches = () => server.requests.filter((r) => r.method === 'PATCH');
    assert.equal(patches().length, 1, 'all eight lines of the zone in one PATCH');
    await runPass(input(c, { a: up, b: up, c: up }));
    assert.equal(patches().length, 1, 'quiet: no PATCH');
    const death = await runPass(input(c, { a: down, b: up, c: up }));
    assert.equal(patches().length, 2);
    assert.deepEqual(patches()[1].json.rrsets.map((s: { name: string; records: Array<{ content: string }> }) => `${s.name} ${s.records[0].content}`).sort(), [
      'api.example.test. 192.0.2.2', 'telecom.api.example.test. 192.0.2.2', 'telecom.www.example.test. 192.0.2.2', 'www.example.test. 192.0.2.2',
    ]);
    assert.equal(death.switched.length, 4);
  } finally {
    await server.close();
  }
});
