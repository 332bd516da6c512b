/**
 * comet across controllers, the pure parts: count shares (sender diffs, receiver sums, resyncs, peers
 * leaving), the cluster-wide counts merged from them, and push fan-out between controllers wired in
 * one process (each controller's onPeer called directly, bodies cloned as the peer channel would).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoutingTable } from '../plugins/comet/logic/routing.ts';
import { PeerCounts } from '../plugins/comet/logic/peer-counts.ts';
import { CountSharer } from '../plugins/comet/logic/count-share.ts';
import { ClusterCounts } from '../plugins/comet/logic/cluster-counts.ts';
import type { NodeSender } from '../plugins/comet/logic/local-push.ts';
import { CometPeering, nodeReports, type PeerLink } from '../plugins/comet/peering.ts';
import type { PushMsg } from '../plugins/comet/messages.ts';
import type { NodeReport, PushRequest } from '../plugins/comet/peer-messages.ts';
import type { ConnTuple } from '../plugins/comet/gateway/change-feed.ts';
import { quietLog } from './comet-fixtures.ts';

const report = (conns: number, extra: Partial<NodeReport> = {}): NodeReport => ({ conns, ips: 1, rooms: 1, version: conns, updatedAt: 1, delivered: 0, dropped: 0, ...extra });
const rooms = (o: Record<string, number>) => new Map(Object.entries(o));
const snapshot = (r: RoutingTable, node: string, conns: ConnTuple[], seq = 1) => r.applySnapshot(node, { epoch: `e-${node}`, seq, conns, ips: conns.length }, { addrs: [node], weight: 10 });

test('count shares: the first is full, then only what changed (rooms to 0 and nodes to null when they leave)', () => {
  const s = new CountSharer();
  const first = s.next('B', rooms({ 'live://1': 2, 'live://2': 1 }), new Map([['n1', report(3)]]));
  assert.equal(first.full, true);
  assert.equal(first.seq, 1);
  assert.deepEqual(first.rooms, [['live://1', 2], ['live://2', 1]]);
  s.taken('B', first);
  const quiet = s.next('B', rooms({ 'live://1': 2, 'live://2': 1 }), new Map([['n1', report(3, { updatedAt: 99 })]]));
  assert.deepEqual([quiet.full, quiet.seq, quiet.rooms, quiet.nodes], [false, 2, [], []], 'nothing changed (updatedAt alone is no change): an empty share');
  s.taken('B', quiet);
  const moved = s.next('B', rooms({ 'live://1': 3 }), new Map([['n2', report(1)]]));
  assert.deepEqual(moved.rooms, [['live://1', 3], ['live://2', 0]]);
  assert.deepEqual(moved.nodes, [['n2', report(1)], ['n1', null]]);
  assert.equal(s.next('C', rooms({}), new Map()).full, true, 'each peer has its own state');
  s.forget('B');
  assert.equal(s.next('B', rooms({ 'live://1': 3 }), new Map()).full, true, 'after a failure: everything again');
});

test('peer counts: shares from two peers add up; a gap or an unknown sender asks for a resync and drops what was held', () => {
  const p = new PeerCounts(() => 1000);
  const sb = new CountSharer();
  const sc = new CountSharer();
  const send = (s: CountSharer, from: string, r: Record<string, number>, nodes: Array<[string, NodeReport]>) => {
    const share = s.next('A', rooms(r), new Map(nodes));
    const res = p.apply(from, share);
    if (res.resync) s.forget('A');
    else s.taken('A', share);
    return res;
  };
  send(sb, 'B', { 'live://1': 2, 'live://2': 1 }, [['b1', report(3)]]);
  send(sc, 'C', { 'live://1': 5 }, [['c1', report(5, { ips: 4 })]]);
  assert.equal(p.roomCount('live://1'), 7);
  assert.deepEqual(Object.fromEntries(p.rooms()), { 'live://1': 7, 'live://2': 1 });
  assert.deepEqual(p.totals(), { conns: 8, ips: 5 });
  send(sb, 'B', { 'live://1': 1 }, [['b1', report(1)]]);
  assert.deepEqual(Object.fromEntries(p.rooms()), { 'live://1': 6 }, 'a room B left is gone, the other is B 1 + C 5');
  assert.deepEqual(p.totals(), { conns: 6, ips: 5 });
  assert.equal(p.node('c1')?.conns, 5);

  // A share to A got lost (B thinks A has it): the next one has a gap.
  sb.taken('A', sb.next('A', rooms({ 'live://1': 9 }), new Map()));
  assert.deepEqual(send(sb, 'B', { 'live://1': 9 }, []), { resync: true });
  assert.equal(p.roomCount('live://1'), 5, "B's share is dropped until its full one arrives");
  assert.deepEqual(send(sb, 'B', { 'live://1': 9 }, []), { resync: false }, 'the full share is taken');
  assert.equal(p.roomCount('live://1'), 14);

  // A restarted: a delta from a sender it does not know asks for everything.
  const fresh = new PeerCounts();
  const delta = sc.next('A', rooms({ 'live://1': 5 }), new Map([['c1', report(5, { ips: 4 })]]));
  assert.equal(delta.full, false);
  assert.deepEqual(fresh.apply('C', delta), { resync: true });
  // C restarted (new epoch): its full share replaces what A held of it.
  const c2 = new CountSharer();
  p.apply('C', c2.next('A', rooms({ 'live://3': 1 }), new Map()));
  assert.deepEqual(Object.fromEntries(p.rooms()), { 'live://1': 9, 'live://3': 1 });
});

test('peer counts: a controller that leaves the live list, or stops sharing, leaves the counts', () => {
  let now = 0;
  const p = new PeerCounts(() => now);
  p.apply('B', new CountSharer().next('A', rooms({ 'live://1': 2 }), new Map([['b1', report(2)]])));
  now = 10;
  p.apply('C', new CountSharer().next('A', rooms({ 'live://1': 3 }), new Map([['c1', report(3)]])));
  assert.deepEqual(p.prune(new Set(['B', 'C']), 0), []);
  assert.deepEqual(p.prune(new Set(['B', 'C']), 5), ['B'], 'B has not shared since 0');
  assert.equal(p.roomCount('live://1'), 3);
  assert.deepEqual(p.prune(new Set(['B']), 0), ['C'], 'C left presence');
  assert.equal(p.size, 0);
  assert.deepEqual([...p.rooms()], []);
  assert.deepEqual(p.totals(), { conns: 0, ips: 0 });
});

test('cluster counts: alone they are the table itself; with peers, table plus peers for every figure', () => {
  const r = new RoutingTable();
  snapshot(r, 'a1', [['k1', '1', 'live://1'], ['k2', '2', 'live://2']]);
  const peers = new PeerCounts();
  const c = new ClusterCounts(r, peers);
  assert.equal(c.allRoomCounts(), r.allRoomCounts(), 'no copy when alone');
  assert.deepEqual(c.totals(), r.totals());
  peers.apply('B', new CountSharer().next('A', rooms({ 'live://1': 4, 'live://9': 1 }), new Map([['b1', report(5, { ips: 2 })]])));
  assert.equal(c.roomCount('live://1'), 5);
  assert.deepEqual(Object.fromEntries(c.allRoomCounts()), { 'live://1': 5, 'live://2': 1, 'live://9': 1 });
  assert.deepEqual(Object.fromEntries(c.roomCountsFor('a1')), { 'live://1': 5, 'live://2': 1 }, 'op-3 counts of its rooms, cluster-wide');
  assert.deepEqual(c.totals(), { conns: 7, ips: 4 });
  assert.equal(c.nodeStats('a1')?.conns, 2);
  assert.equal(c.nodeStats('a1')?.rooms, 2, 'rooms per node kept as they change');
  assert.equal(c.nodeStats('b1')?.conns, 5);
  assert.equal(c.isLocal('a1'), true);
  assert.equal(c.isLocal('b1'), false);
  assert.equal(r.roomCount('live://1'), 1, 'the table itself still holds only its own');
});

/** Controllers in one process: tables, a recording sender, and a peer link calling the others' handlers. */
function cluster(ids: string[], now: () => number = Date.now) {
  const live = new Set(ids);
  const ctrl = new Map<string, { routing: RoutingTable; sent: Array<{ node: string; msg: PushMsg }>; peering: CometPeering; failed: string[]; kicked: string[] }>();
  // The peer channel carries JSON values with Buffers as bytes: copies, Buffers staying Buffers.
  const clone = (v: unknown): unknown =>
    Buffer.isBuffer(v) ? Buffer.from(v) : Array.isArray(v) ? v.map(clone) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)])) : v;
  for (const id of ids) {
    const routing = new RoutingTable();
    const sent: Array<{ node: string; msg: PushMsg }> = [];
    const failed: string[] = [];
    const kicked: string[] = [];
    const sender: NodeSender = {
      localNodes: () => routing.nodeIds(),
      sendToNode: (node, msg) => sent.push({ node, msg }),
      broadcast: (nodes, msg) => nodes.forEach((node) => sent.push({ node, msg })),
    };
    const call = async (to: string, method: string, body: unknown) => {
      if (!live.has(to)) throw new Error(`controller ${to}: connection refused`);
      const h = ctrl.get(to)!.peering.handlers[method as 'push' | 'counts' | 'claims'];
      return clone(await h(clone(body), id));
    };
    const link: PeerLink = {
      list: () => [...live].filter((x) => x !== id).map((x) => ({ id: x })),
      call,
      broadcast: async (method, body) =>
        Promise.all(
          [...ids].filter((x) => x !== id).map((to) =>
            call(to, method, body).then(
              (result) => ({ controller: to, ok: true as const, result }),
              (err: Error) => ({ controller: to, ok: false as const, error: err.message }),
            ),
          ),
        ),
    };
    const peering = new CometPeering(link, routing, sender, quietLog, {
      self: id,
      kick: (node, keys) => kicked.push(...keys.map((k) => `${node}:${k}`)),
      timeoutMs: 1000,
      staleMs: 10_000,
      failed: (c) => failed.push(c),
      now,
    });
    ctrl.set(id, { routing, sent, peering, failed, kicked });
  }
  const shareAll = async () => {
    for (const c of ctrl.values()) await c.peering.share(() => nodeReports(c.routing, () => undefined));
  };
  return { ctrl, live, shareAll, counts: (id: string) => new ClusterCounts(ctrl.get(id)!.routing, ctrl.get(id)!.peering.counts) };
}

test('peering: a push through one controller reaches the targets held by every controller, once each', async () => {
  const { ctrl } = cluster(['A', 'B', 'C']);
  snapshot(ctrl.get('A')!.routing, 'a1', [['ka', '7', 'live://1']]);
  snapshot(ctrl.get('B')!.routing, 'b1', [['kb', '7', 'live://1'], ['kb2', '8', 'live://2']]);
  snapshot(ctrl.get('C')!.routing, 'c1', [['kc', '9', '']]);
  const body = Buffer.from([0, 255, 7]);
  const sentBy = () => Object.fromEntries([...ctrl].map(([id, c]) => [id, c.sent.splice(0).map((s) => `${s.node}:${s.msg.kind === 'keys' ? s.msg.keys.join(',') : s.msg.kind}`)]));

  assert.equal(await ctrl.get('A')!.peering.push({ kind: 'keys', op: 1000, keys: ['kb', 'kc', 'nobody'], body }), 2);
  assert.deepEqual(sentBy(), { A: [], B: ['b1:kb'], C: ['c1:kc'] });
  assert.equal(await ctrl.get('C')!.peering.push({ kind: 'mids', op: 1000, mids: ['7'], body }), 2);
  assert.deepEqual(sentBy(), { A: ['a1:ka'], B: ['b1:kb'], C: [] }, 'each controller expands mids in its own table');
  assert.equal(await ctrl.get('A')!.peering.push({ kind: 'room', op: 1000, room: 'live://2', body }), 1);
  assert.deepEqual(sentBy(), { A: [], B: ['b1:room'], C: [] });
  const all: PushRequest = { kind: 'all', op: 1000, speed: 3, body };
  assert.equal(await ctrl.get('B')!.peering.push(all), 3);
  const got = ctrl.get('C')!.sent[0].msg;
  assert.deepEqual(sentBy(), { A: ['a1:all'], B: ['b1:all'], C: ['c1:all'] });
  assert.ok(got.kind === 'all' && got.speed === 3 && Buffer.isBuffer(got.body) && got.body.equals(body), 'speed as divided by the origin, body bytes intact');
});

test('peering: a controller that does not answer is reported; the others still get the push', async () => {
  const { ctrl, live } = cluster(['A', 'B', 'C']);
  snapshot(ctrl.get('B')!.routing, 'b1', [['kb', '1', '']]);
  snapshot(ctrl.get('C')!.routing, 'c1', [['kc', '1', '']]);
  live.delete('C');
  assert.equal(await ctrl.get('A')!.peering.push({ kind: 'keys', op: 1000, keys: ['kb', 'kc'], body: Buffer.from('x') }), 1);
  assert.deepEqual(ctrl.get('A')!.failed, ['C']);
  assert.equal(ctrl.get('B')!.sent.length, 1);
  assert.equal(ctrl.get('C')!.sent.length, 0);
});

test('peering: shares make every controller answer the cluster-wide counts; a dead one leaves them', async () => {
  const { ctrl, live, shareAll, counts } = cluster(['A', 'B', 'C']);
  snapshot(ctrl.get('A')!.routing, 'a1', [['ka', '1', 'live://1']]);
  snapshot(ctrl.get('B')!.routing, 'b1', [['kb', '2', 'live://1'], ['kb2', '3', 'live://2']]);
  snapshot(ctrl.get('C')!.routing, 'c1', [['kc', '4', 'live://1']]);
  await shareAll();
  for (const id of ['A', 'B', 'C']) {
    assert.deepEqual(Object.fromEntries(counts(id).allRoomCounts()), { 'live://1': 3, 'live://2': 1 }, id);
    assert.deepEqual(counts(id).totals(), { conns: 4, ips: 4 }, id);
    assert.equal(counts(id).nodeStats('b1')?.conns, 2, id);
  }
  // B's node gains a connection, C's leaves the room: the next round carries only that.
  ctrl.get('B')!.routing.applyBatch('b1', { epoch: 'e-b1', seq: 2, upserts: [['kb3', '5', 'live://1']], removes: [], conns: 3, ips: 3 });
  ctrl.get('C')!.routing.applyBatch('c1', { epoch: 'e-c1', seq: 2, upserts: [], removes: ['kc'], conns: 0, ips: 0 });
  await shareAll();
  assert.equal(counts('A').roomCount('live://1'), 3);
  assert.deepEqual(Object.fromEntries(counts('A').roomCountsFor('a1')), { 'live://1': 3 });
  // C dies: its calls fail and, once it leaves the live list, its share goes.
  snapshot(ctrl.get('C')!.routing, 'c1', [['kc', '4', 'live://1'], ['kc2', '4', 'live://1']], 3);
  live.delete('C');
  await ctrl.get('A')!.peering.share(() => nodeReports(ctrl.get('A')!.routing, () => undefined));
  assert.equal(counts('A').roomCount('live://1'), 3, "C's clients left the counts (C told nobody about its two new ones)");
  assert.equal(counts('A').nodeStats('c1'), undefined);
  // C comes back: A answers its next share "resync" (A dropped it) and C sends everything at once.
  live.add('C');
  await shareAll();
  assert.equal(counts('A').roomCount('live://1'), 5);
});

test('peering: the same key connected on nodes of two controllers — the older connection is kicked, once, by its controller', async () => {
  let now = 1000;
  const { ctrl, shareAll } = cluster(['A', 'B'], () => now);
  const A = ctrl.get('A')!;
  const B = ctrl.get('B')!;
  const connect = (c: typeof A, node: string, seq: number, upserts: ConnTuple[]) => {
    c.peering.noteChanges(node, upserts);
    c.routing.applyBatch(node, { epoch: `e-${node}`, seq, upserts, removes: [], conns: upserts.length, ips: 1 });
  };
  connect(A, 'a1', 1, [['same', '1', ''], ['only-a', '2', '']]);
  await shareAll();
  assert.deepEqual([A.kicked, B.kicked], [[], []], 'no other connection of those keys');
  now = 2000;
  connect(B, 'b1', 1, [['same', '1', 'live://1']]);
  // A room change of a key b1 already holds is no new connection: nothing claimed.
  connect(B, 'b1', 2, [['same', '1', 'live://2']]);
  await shareAll();
  assert.deepEqual(A.kicked, ['a1:same'], "A's connection is the older one");
  assert.deepEqual(B.kicked, []);
  await shareAll();
  assert.deepEqual(A.kicked, ['a1:same'], 'claimed once');
  // A node that relinked from A to B announces keys A still has for it: the same connections, not kicked.
  now = 3000;
  connect(B, 'a1', 1, [['only-a', '2', '']]);
  await shareAll();
  assert.deepEqual(A.kicked, ['a1:same']);
});
