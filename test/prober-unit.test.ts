import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, pickNodes, LEVELS } from '../plugins/prober/quorum.ts';
import { offsetMs, roundStart, spreadWindowMs } from '../plugins/prober/rounds.ts';
import { isValidTarget } from '../plugins/prober/checks/target.ts';
import { parseGroup } from '../plugins/prober/parse.ts';
import { callbackBody } from '../plugins/prober/callback.ts';
import { NOT_PROBED, proberConfig } from '../plugins/prober/schema.ts';
import { IpliveError } from '../plugins/prober/envelope.ts';
import { DueHeap } from '../plugins/prober/queue.ts';

const votes = (...statuses: number[]) => statuses.map((status, i) => ({ node: `n${i}`, status, resTime: 10 * (i + 1) }));
const nodes = (n: number) => Array.from({ length: n }, (_, i) => `n${i}`);

test('level 0: three nodes, down when two fail', () => {
  assert.equal(decide(0, nodes(3), votes(1, 1, 500)).state, 'up');
  const v = decide(0, nodes(3), votes(1, 500, 500));
  assert.equal(v.state, 'down');
  assert.equal(v.status, 500);
  assert.equal(v.resTime, 20);
  assert.equal(v.degraded, false);
});

test('level 1: two nodes, down when one fails', () => {
  assert.equal(decide(1, nodes(2), votes(1, 1)).state, 'up');
  assert.equal(decide(1, nodes(2), votes(1, 3)).state, 'down');
  assert.equal(decide(1, nodes(2), votes(1, 3)).status, 3);
});

test('level 2: seven nodes, down when five fail', () => {
  assert.equal(decide(2, nodes(7), votes(2, 2, 2, 2, 1, 1, 1)).state, 'up');
  assert.equal(decide(2, nodes(7), votes(2, 2, 2, 2, 2, 1, 1)).state, 'down');
});

test('level 4: every node, down only when all fail', () => {
  assert.equal(decide(4, nodes(5), votes(2, 2, 2, 2, 1)).state, 'up');
  const v = decide(4, nodes(5), votes(2, 2, 3, 2, 2));
  assert.equal(v.state, 'down');
  assert.equal(v.status, 2, 'the most common failure is reported');
});

test('missing results never count as down; the verdict is degraded', () => {
  // Level 0 with one node silent: the two answers decide, and two failures are still needed.
  const v = decide(0, nodes(3), votes(1, 500));
  assert.equal(v.state, 'up');
  assert.equal(v.degraded, true);
  assert.deepEqual(v.missing, ['n2']);
  // Nobody answered: unknown, never down.
  assert.equal(decide(0, nodes(3), []).state, 'unknown');
  // Level 4 with a silent node: all of those that answered failed.
  assert.equal(decide(4, nodes(3), votes(2, 2)).state, 'down');
});

test('a node that could not probe (icmp without ping) is neither a failure nor missing', () => {
  // Level 1 (down when one fails): the node without ping does not turn the record down.
  const v = decide(1, nodes(2), votes(1, NOT_PROBED));
  assert.equal(v.state, 'up');
  assert.equal(v.received, 1);
  assert.equal(v.failures, 0);
  assert.equal(v.degraded, true);
  assert.deepEqual(v.missing, []);
  // Level 4 (down when all fail): the failures of the nodes that did probe decide.
  assert.equal(decide(4, nodes(3), votes(2, NOT_PROBED, 2)).state, 'down');
  // Only such answers: the record stays unknown (and is left out of the callback), never down.
  const none = decide(0, nodes(1), votes(NOT_PROBED));
  assert.equal(none.state, 'unknown');
  assert.deepEqual(none.missing, []);
});

test('fewer live nodes than the level asks: the threshold shrinks to what answered', () => {
  const v = decide(2, nodes(3), votes(2, 2, 2));
  assert.equal(v.state, 'down');
  assert.equal(v.degraded, true);
  assert.equal(decide(2, nodes(3), votes(2, 2, 1)).state, 'up');
});

test('pickNodes: level sizes, stable picks, replacement of a lost node', () => {
  const live = nodes(10);
  assert.equal(pickNodes('a:1', 0, live).length, 3);
  assert.equal(pickNodes('a:1', 1, live).length, 2);
  assert.equal(pickNodes('a:1', 2, live).length, 7);
  assert.equal(pickNodes('a:1', 4, live).length, 10);
  assert.equal(pickNodes('a:1', 2, nodes(3)).length, 3);
  const pick = pickNodes('a:1', 0, live);
  assert.deepEqual(pickNodes('a:1', 0, [...live].reverse()), pick, 'order of the live list does not matter');
  const lost = pick[0];
  const next = pickNodes('a:1', 0, live.filter((n) => n !== lost));
  assert.equal(next.length, 3);
  assert.ok(!next.includes(lost));
  assert.deepEqual(next.filter((n) => pick.includes(n)).sort(), pick.slice(1).sort(), 'survivors keep the group');
  assert.deepEqual(Object.keys(LEVELS).sort(), ['0', '1', '2', '4']);
});

test('rounds align to interval boundaries and spread starts inside the round', () => {
  const t = Date.UTC(2026, 0, 1, 12, 34, 56, 789);
  assert.equal(roundStart(t, 60), Date.UTC(2026, 0, 1, 12, 34, 0));
  assert.equal(roundStart(t, 300), Date.UTC(2026, 0, 1, 12, 30, 0));
  assert.equal(roundStart(t, 900), Date.UTC(2026, 0, 1, 12, 30, 0));
  const w = spreadWindowMs(60, 3, 0, 0.5);
  assert.equal(w, 30_000);
  assert.equal(spreadWindowMs(10, 3, 2, 0.5), 500, 'leaves room for every attempt');
  const offsets = Array.from({ length: 1000 }, (_, i) => offsetMs(`g:${i}`, w));
  assert.ok(offsets.every((o) => o >= 0 && o < w));
  assert.ok(new Set(offsets.map((o) => Math.floor(o / 1000))).size >= 25, 'starts spread over the window');
  assert.equal(offsetMs('x', w), offsetMs('x', w));
});

test('ping targets: IPs and hostnames only', () => {
  for (const ok of ['127.0.0.1', '::1', 'example.com', 'a-b.example.org', 'localhost', 'host.']) assert.ok(isValidTarget(ok), ok);
  for (const bad of ['-c 1000 127.0.0.1', '-f', '--help', '127.0.0.1;reboot', '$(reboot)', '`id`', 'a b', ' 127.0.0.1', 'a|b', 'a&b', 'a>b', "a'b", 'a\nb', '', 'x'.repeat(300), '-example.com', 'exa_mple.com']) assert.ok(!isValidTarget(bad), JSON.stringify(bad));
});

const cfg = proberConfig.parse({ apps: { app: {} } });
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IpliveError);
    return (err as IpliveError).status;
  }
  return 1000;
};

test('parseGroup: defaults, pairing and each rejected field', () => {
  const g = parseGroup({ group_id: '7', record_ids: '1:2', ips: '127.0.0.1:example.com' }, cfg, 'app', 1);
  assert.deepEqual(g.records, [{ id: '1', ip: '127.0.0.1' }, { id: '2', ip: 'example.com' }]);
  assert.equal(g.level, 4);
  assert.equal(g.protocol, 'http');
  assert.equal(g.port, 80);
  assert.equal(g.interval, 60);
  assert.equal(g.timeout, 3);
  assert.equal(g.retryCount, 0);
  assert.equal(g.httpCode, null);
  assert.equal(parseGroup({ group_id: '7', record_ids: '1', ips: '127.0.0.1', protocol: 'https' }, cfg, 'app', 1).port, 443);
  const base = { group_id: '7', record_ids: '1', ips: '127.0.0.1' };
  assert.equal(codeOf(() => parseGroup({ ...base, record_ids: '1:2' }, cfg, 'app', 1)), 1006);
  assert.equal(codeOf(() => parseGroup({ ...base, level: '3' }, cfg, 'app', 1)), 1006);
  assert.equal(codeOf(() => parseGroup({ ...base, protocol: 'udp' }, cfg, 'app', 1)), 1006);
  assert.equal(codeOf(() => parseGroup({ ...base, interval: '5' }, cfg, 'app', 1)), 1003);
  assert.equal(codeOf(() => parseGroup({ ...base, ips: '-c 9 127.0.0.1', protocol: 'icmp' }, cfg, 'app', 1)), 1003);
  assert.equal(codeOf(() => parseGroup({ ...base, protocol: 'tcp' }, cfg, 'app', 1)), 1002);
  assert.equal(codeOf(() => parseGroup({ group_id: '7', ips: '127.0.0.1' }, cfg, 'app', 1)), 1002);
  assert.equal(codeOf(() => parseGroup({ ...base, domain: 'a\r\nX-Evil: 1' }, cfg, 'app', 1)), 1003);
  assert.equal(codeOf(() => parseGroup({ ...base, timeout: '30', interval: '60', retry_count: '1' }, cfg, 'app', 1)), 1003);
});

test('callback bodies: form and JSON with the seed shape', () => {
  const form = callbackBody('form', '12', 1700000000, [{ record_id: '1', status: 1, res_time: 5 }]);
  assert.equal(form.contentType, 'application/x-www-form-urlencoded');
  const f = new URLSearchParams(form.body);
  assert.deepEqual([...f.keys()], ['group_id', 'timestamp', 'result']);
  assert.equal(f.get('group_id'), '12');
  assert.deepEqual(JSON.parse(f.get('result')!), [{ record_id: '1', status: '1', res_time: 5 }]);
  const json = callbackBody('json', '12', 1700000000, [{ record_id: '3', status: 404, res_time: 7 }]);
  assert.deepEqual(JSON.parse(json.body), { group_id: 12, timestamp: 1700000000, result: [{ record_id: '3', status: '404', res_time: 7 }] });
});

test('DueHeap pops in due order', () => {
  const h = new DueHeap<{ due: number }>();
  const values = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1000);
  for (const due of values) h.push({ due });
  const out: number[] = [];
  while (h.size) out.push(h.pop()!.due);
  assert.deepEqual(out, [...values].sort((a, b) => a - b));
});
