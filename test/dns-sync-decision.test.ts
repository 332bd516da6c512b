/** dns-sync's decision table: who serves each line, for 2, 3 and 5 nodes, fallback, hysteresis, no live node, IPv6. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dnsSyncConfig, type DnsSyncConfigInput } from '../plugins/dns-sync/config.ts';
import { decide, planLines, type LineDecision } from '../plugins/dns-sync/decision.ts';
import { holderOf, livenessFor, mergeDeclarations, type Liveness } from '../plugins/dns-sync/nodes.ts';
import { watchdogLiveness } from '../plugins/dns-sync/liveness.ts';

const NOW = 1_800_000_000_000;
const UP_AFTER = 30_000;
const settled: Liveness = { up: true, since: NOW - 3_600_000 };
const fresh: Liveness = { up: true, since: NOW - 5_000 };
const dead: Liveness = { up: false, since: NOW - 10_000 };

function config(nodes: DnsSyncConfigInput['nodes'], services: Array<Partial<NonNullable<DnsSyncConfigInput['services']>[number]>> = [{}]) {
  return dnsSyncConfig.parse({
    providers: { p: { type: 'dry-run' } },
    services: services.map((s, i) => ({ serviceName: `svc${i}`, domain: 'example.test', record: `r${i}`, platformProvider: 'p', ...s })),
    nodes,
  });
}

const v4 = (n: number) => `192.0.2.${n}`;

type Cfg = ReturnType<typeof config>;

/** Runs the decision and returns `line/type → target` (null for no-live-node) for service 0. */
function run(cfg: Cfg, watchdog: Record<string, Liveness>, holders: Record<string, string> = {}, extra: { probes?: Record<string, Record<string, Liveness>>; now?: number } = {}) {
  const plans = planLines(cfg.services, cfg.nodes);
  const hmap = new Map(plans.map((p) => [p.key, holders[`${p.ref.line}/${p.ref.type}`] ?? holders[p.ref.line] ?? null]));
  const out = decide({ services: cfg.services, nodes: cfg.nodes, liveness: { watchdog, probes: extra.probes }, holders: hmap, now: extra.now ?? NOW, upAfterMs: UP_AFTER });
  const of = (service: string) => Object.fromEntries(out.decisions.filter((d) => d.service === service).map((d) => [`${d.ref.line}/${d.ref.type}`, d]));
  return { ...out, lines: of('svc0'), of };
}

const targets = (lines: Record<string, LineDecision>) => Object.fromEntries(Object.entries(lines).map(([k, d]) => [k, d.target]));
const holdersFrom = (lines: Record<string, LineDecision>) => Object.fromEntries(Object.entries(lines).map(([k, d]) => [k, d.target ?? '']));

test('two nodes: each serves its own lines; a death moves its lines to the survivor; recovery waits upAfter', () => {
  const cfg = config({ a: { ISPs: ['default', 'CT'], address: v4(1) }, b: { ISPs: ['CU', 'CMCC', 'CNEdu'], address: v4(2) } });
  const start = run(cfg, { a: settled, b: settled });
  assert.deepEqual(targets(start.lines), { 'default/A': 'a', 'telecom/A': 'a', 'unicom/A': 'b', 'mobile/A': 'b', 'edu/A': 'b' });
  assert.ok(Object.values(start.lines).every((d) => d.reason === 'owner'));
  assert.equal(start.lines['default/A'].value, v4(1));

  const down = run(cfg, { a: dead, b: settled }, holdersFrom(start.lines));
  assert.deepEqual(targets(down.lines), { 'default/A': 'b', 'telecom/A': 'b', 'unicom/A': 'b', 'mobile/A': 'b', 'edu/A': 'b' });
  assert.equal(down.lines['telecom/A'].reason, 'any-fallback');
  assert.match(down.lines['telecom/A'].detail, /a is down; b is live/);
  assert.equal(down.lines['unicom/A'].reason, 'keep');

  // a is back but for less than upAfter: b keeps everything (no flapping under an irregular beat).
  const back = run(cfg, { a: fresh, b: settled }, holdersFrom(down.lines));
  assert.deepEqual(targets(back.lines), targets(down.lines));
  assert.ok(Object.values(back.lines).every((d) => d.reason === 'keep'));

  // Up for upAfter: a takes its lines back, and only those.
  const later = run(cfg, { a: settled, b: settled }, holdersFrom(back.lines));
  assert.deepEqual(targets(later.lines), targets(start.lines));
  assert.equal(later.lines['telecom/A'].reason, 'recovered');
  assert.match(later.lines['telecom/A'].detail, /takes the line back from b/);
  assert.equal(later.lines['edu/A'].reason, 'keep');
});

test('three nodes: one writer per line; the dead node\'s line goes to the first default server by name, and stays with a live holder', () => {
  const cfg = config({
    a: { ISPs: ['default', 'CT'], address: v4(1) },
    b: { ISPs: ['default', 'CU'], address: v4(2) },
    c: { ISPs: ['CMCC'], address: v4(3) },
  });
  const start = run(cfg, { a: settled, b: settled, c: settled });
  assert.deepEqual(targets(start.lines), { 'default/A': 'a', 'telecom/A': 'a', 'unicom/A': 'b', 'mobile/A': 'c' });

  const cDown = run(cfg, { a: settled, b: settled, c: dead }, holdersFrom(start.lines));
  assert.equal(cDown.lines['mobile/A'].target, 'a');
  assert.equal(cDown.lines['mobile/A'].reason, 'default-fallback');
  // Every other line is untouched: nothing moves without cause.
  for (const line of ['default/A', 'telecom/A', 'unicom/A']) assert.equal(cDown.lines[line].reason, 'keep');

  // A live default server already holding the line keeps it even though "a" sorts first.
  const heldByB = run(cfg, { a: settled, b: settled, c: dead }, { ...holdersFrom(start.lines), 'mobile/A': 'b' });
  assert.equal(heldByB.lines['mobile/A'].target, 'b');
  assert.equal(heldByB.lines['mobile/A'].reason, 'keep');

  // The same input gives the same answer, whatever order the nodes were declared in.
  const shuffled = { ...cfg, nodes: Object.fromEntries(Object.entries(cfg.nodes).reverse()) };
  assert.deepEqual(run(shuffled, { c: dead, b: settled, a: settled }, holdersFrom(start.lines)).decisions, cDown.decisions);
});

test('five nodes, two dead: every line has exactly one live target and only the dead nodes\' lines move', () => {
  const cfg = config({
    n1: { ISPs: ['default'], address: v4(1) },
    n2: { ISPs: ['CT', 'CU'], address: v4(2) },
    n3: { ISPs: ['CT'], address: v4(3) },
    n4: { ISPs: ['CMCC', 'CNEdu'], address: v4(4) },
    n5: { ISPs: ['OverSea', 'default'], address: v4(5) },
  });
  const all = { n1: settled, n2: settled, n3: settled, n4: settled, n5: settled };
  const start = run(cfg, all);
  assert.deepEqual(targets(start.lines), { 'default/A': 'n1', 'telecom/A': 'n2', 'unicom/A': 'n2', 'mobile/A': 'n4', 'edu/A': 'n4', 'oversea/A': 'n5' });

  const after = run(cfg, { ...all, n2: dead, n4: dead }, holdersFrom(start.lines));
  assert.deepEqual(targets(after.lines), { 'default/A': 'n1', 'telecom/A': 'n3', 'unicom/A': 'n1', 'mobile/A': 'n1', 'edu/A': 'n1', 'oversea/A': 'n5' });
  const moved = Object.keys(after.lines).filter((k) => after.lines[k].target !== start.lines[k].target).sort();
  assert.deepEqual(moved, ['edu/A', 'mobile/A', 'telecom/A', 'unicom/A']);
  assert.equal(after.alerts.length, 0);
});

test('a line no node declares is managed only when a service asks for it, and falls back to a default server', () => {
  const cfg = config({ a: { ISPs: ['default'], address: v4(1) }, b: { ISPs: ['CT'], address: v4(2) } }, [{}, { lines: ['default', 'CT', 'CMCC'] }]);
  const r = run(cfg, { a: settled, b: settled });
  assert.deepEqual(Object.keys(r.of('svc0')).sort(), ['default/A', 'telecom/A']);
  const svc1 = r.of('svc1');
  assert.deepEqual(targets(svc1), { 'default/A': 'a', 'telecom/A': 'b', 'mobile/A': 'a' });
  assert.equal(svc1['mobile/A'].reason, 'default-fallback');
});

test('no live node: the record keeps its value (no dead address, no deletion) and an alert is raised', () => {
  const cfg = config({ a: { ISPs: ['default'], address: v4(1) }, b: { ISPs: ['CT'], address: v4(2) } });
  const r = run(cfg, { a: dead, b: dead }, { default: 'a', telecom: 'b' });
  for (const d of Object.values(r.lines)) {
    assert.equal(d.target, null);
    assert.equal(d.value, null);
    assert.equal(d.reason, 'no-live-node');
  }
  assert.equal(r.alerts.length, 2);
  assert.match(r.alerts[1].message, /no live node can serve svc0 telecom A; the record keeps pointing at b/);
  // A node the watchdog has never seen counts as down too.
  assert.equal(run(cfg, {}).alerts.length, 2);
});

test('a node not counted yet (a controller just started): the record keeps its value, no alert until it is counted down or the grace is over', () => {
  const cfg = config({ a: { ISPs: ['default'], address: v4(1) }, b: { ISPs: ['CT'], address: v4(2) } });
  const joining: Liveness = { up: false, since: 0, joining: true };
  const r = run(cfg, { a: joining, b: dead }, { default: 'a' });
  assert.equal(r.alerts.length, 0);
  for (const d of Object.values(r.lines)) {
    assert.deepEqual([d.target, d.value, d.reason], [null, null, 'joining']);
    assert.match(d.detail, /waiting for the first heartbeats of a \(linked, not counted up yet\)/);
  }
  // A live node is still taken at once; once the joining node is counted down the alert is raised.
  assert.equal(run(cfg, { a: joining, b: fresh }).lines['default/A'].target, 'b');
  assert.equal(run(cfg, { a: dead, b: dead }).alerts.length, 2);
  // From the watchdog's states: only a linked "unknown" node is joining; one never heard from is not.
  const info = (name: string, state: 'up' | 'down' | 'unknown', connected: boolean) => ({ id: name, name, labels: {}, address: '', state, connected, lastHeartbeat: null, since: null, plugins: [], local: false });
  const nodes = [info('a', 'unknown', true), info('b', 'unknown', false), info('c', 'up', true)];
  const w = watchdogLiveness(nodes, {}, NOW - 1, NOW);
  assert.deepEqual([w.a.joining, w.b.joining, w.c.joining], [true, undefined, undefined]);
  assert.equal(run(cfg, { a: w.b, b: w.b }).alerts.length, 2);
  // In the first upAfter after a controller start a node whose agent has not linked yet is joining too.
  assert.equal(watchdogLiveness(nodes, {}, NOW + 1, NOW).b.joining, true);
});

test('only freshly started nodes: one of them is better than a dead one (reason unsettled)', () => {
  const cfg = config({ a: { ISPs: ['default'], address: v4(1) }, b: { ISPs: ['CT'], address: v4(2) } });
  const r = run(cfg, { a: fresh, b: dead }, { default: 'a', telecom: 'b' });
  assert.equal(r.lines['telecom/A'].target, 'a');
  assert.equal(r.lines['telecom/A'].reason, 'unsettled');
  assert.equal(r.lines['default/A'].reason, 'keep');
});

test('a node that beats irregularly never takes a line back while another node holds it', () => {
  const cfg = config({ a: { ISPs: ['CT', 'default'], address: v4(1) }, b: { ISPs: ['default'], address: v4(2) } });
  let holders: Record<string, string> = { default: 'b', telecom: 'b' };
  // a comes back every 20 s and drops again: its up-time never reaches upAfter (30 s).
  for (let i = 0; i < 6; i++) {
    const now = NOW + i * 20_000;
    const a: Liveness = i % 2 === 0 ? { up: true, since: now - 19_000 } : { up: false, since: now - 1_000 };
    const r = run(cfg, { a, b: settled }, holders, { now });
    assert.equal(r.lines['telecom/A'].target, 'b', `evaluation ${i}`);
    holders = holdersFrom(r.lines);
  }
});

test('IPv6 and Both: A and AAAA lines are decided apart, each among nodes with an address of that type', () => {
  const cfg = config({
    a: { ISPs: ['default'], networkType: 'Both', address: v4(1), address6: '2001:DB8:0::1' },
    b: { ISPs: ['default'], networkType: 'IPV4', address: v4(2) },
    c: { ISPs: ['CT'], networkType: 'IPV6', address: '2001:db8::3' },
  });
  const start = run(cfg, { a: settled, b: settled, c: settled });
  assert.deepEqual(targets(start.lines), { 'default/A': 'a', 'default/AAAA': 'a', 'telecom/A': 'a', 'telecom/AAAA': 'c' });
  assert.equal(start.lines['default/AAAA'].value, '2001:db8::1', 'IPv6 addresses are compared in RFC 5952 form');

  const r = run(cfg, { a: dead, b: settled, c: dead }, holdersFrom(start.lines));
  assert.equal(r.lines['default/A'].target, 'b');
  assert.equal(r.lines['telecom/A'].target, 'b');
  assert.equal(r.lines['default/AAAA'].reason, 'no-live-node');
  assert.equal(r.lines['telecom/AAAA'].reason, 'no-live-node');
  assert.deepEqual(r.alerts.map((a) => `${a.line}/${a.recordType}`), ['default/AAAA', 'telecom/AAAA']);
});

test('a probed service also needs the prober\'s quorum up on the node; no verdict yet is not down', () => {
  const cfg = config({ a: { ISPs: ['default'], address: v4(1) }, b: { ISPs: ['default'], address: v4(2) } }, [{ probe: { app_name: 'shop', group_id: 7 } }, {}]);
  assert.equal(cfg.services[0].probe?.group_id, '7');
  const probes = { svc0: { a: { up: false, since: NOW - 1000 } } };
  const r = run(cfg, { a: settled, b: settled }, { default: 'a' }, { probes });
  assert.equal(r.of('svc0')['default/A'].target, 'b', 'probe down on a');
  assert.equal(r.of('svc1')['default/A'].target, 'a', 'an unprobed service ignores the probe');
  // Probe back up recently: the later of the two since-times counts for upAfter.
  const l = livenessFor({ watchdog: { a: settled }, probes: { svc0: { a: fresh } } }, cfg.services[0], 'a');
  assert.deepEqual(l, fresh);
  assert.deepEqual(livenessFor({ watchdog: { a: settled } }, cfg.services[0], 'a'), settled);
});

test('holderOf: the node whose address a line holds, IPv6 in any spelling; unknown values hold nothing', () => {
  const cfg = config({ a: { ISPs: ['default'], address: v4(1) }, c: { ISPs: ['CT'], networkType: 'IPV6', address: '2001:db8::3' } });
  assert.equal(holderOf([v4(1)], 'A', cfg.nodes), 'a');
  assert.equal(holderOf(['2001:0db8:0:0:0:0:0:3'], 'AAAA', cfg.nodes), 'c');
  assert.equal(holderOf(['198.51.100.7'], 'A', cfg.nodes), null);
  assert.equal(holderOf([], 'A', cfg.nodes), null);
  assert.equal(holderOf([v4(1)], 'AAAA', cfg.nodes), null);
});

test('a node declared by the controller and by its agent: the controller\'s entry wins whole', () => {
  const cfg = config({ a: { ISPs: ['CT'], address: v4(1) } });
  const fromAgents = config({ a: { ISPs: ['default', 'CU'], networkType: 'Both', address: v4(9), address6: '2001:db8::9' }, b: { ISPs: ['CU'], address: v4(2) } }).nodes;
  const merged = mergeDeclarations(cfg.nodes, fromAgents);
  assert.deepEqual(merged.a, cfg.nodes.a);
  assert.deepEqual(merged.b, fromAgents.b);
});
