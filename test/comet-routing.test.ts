import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoutingTable } from '../plugins/comet/logic/routing.ts';
import { Balancer, type BalancedNode } from '../plugins/comet/logic/balancer.ts';
import { bindQuery } from '../plugins/comet/api/gin-bind.ts';
import { roomIdOf } from '../plugins/comet/api/online.ts';
import { cometConfig } from '../plugins/comet/config.ts';
import type { ChangeBatch, ConnTuple } from '../plugins/comet/gateway/change-feed.ts';
import { describeIssues } from '../plugins/sdk/validate.ts';

const batch = (epoch: string, seq: number, upserts: ConnTuple[], removes: string[] = []): ChangeBatch => ({ epoch, seq, upserts, removes, conns: upserts.length, ips: 1 });

test('routing: deltas build key → node, mid → keys and room counts; removes undo them', () => {
  const r = new RoutingTable();
  r.applyBatch('n1', batch('e1', 1, [['k1', '7', 'live://1'], ['k2', '7', 'live://1'], ['k3', '8', '']]));
  r.applyBatch('n2', batch('e2', 1, [['k4', '7', 'live://1'], ['k5', '0', 'live://2']]));
  assert.deepEqual([...r.nodesForKeys(['k1', 'k4', 'k3', 'zz', ''])], [['n1', ['k1', 'k3']], ['n2', ['k4']]]);
  assert.deepEqual(r.keysForMids(['7', '0']).sort(), ['k1', 'k2', 'k4'], 'mid 0 is never mapped');
  assert.equal(r.roomCount('live://1'), 3);
  assert.deepEqual(r.nodesForRoom('live://1').sort(), ['n1', 'n2']);
  assert.deepEqual(Object.fromEntries(r.roomCountsFor('n2')), { 'live://1': 3, 'live://2': 1 });
  r.applyBatch('n1', batch('e1', 2, [['k1', '7', 'live://2']], ['k2']));
  assert.equal(r.roomCount('live://1'), 1);
  assert.equal(r.roomCount('live://2'), 2);
  assert.deepEqual(r.keysForMids(['7']).sort(), ['k1', 'k4']);
  assert.equal(r.needsResync('n1'), false);
});

test('routing: a lost batch asks for a resync; a stale one is ignored; a snapshot makes it exact again', () => {
  const r = new RoutingTable();
  assert.equal(r.applyBatch('n1', batch('e1', 1, [['a', '1', 'r://1']])).resync, false);
  assert.equal(r.applyBatch('n1', batch('e1', 3, [['c', '1', 'r://1']])).resync, true, 'seq 2 is missing');
  assert.equal(r.nodesForKeys(['c']).size, 1, 'the later batch is still applied: its keys are absolute states');
  assert.equal(r.applyBatch('n1', batch('e1', 2, [['b', '1', 'r://1']])).resync, false, 'late batch ignored');
  assert.equal(r.nodesForKeys(['b']).size, 0);
  assert.equal(r.needsResync('n1'), true);
  r.applySnapshot('n1', { epoch: 'e1', seq: 3, conns: [['a', '1', 'r://1'], ['b', '1', 'r://1']], ips: 1 });
  assert.equal(r.needsResync('n1'), false);
  assert.deepEqual(r.keysForMids(['1']).sort(), ['a', 'b'], 'c was gone and the snapshot says so');
  assert.equal(r.roomCount('r://1'), 2);
  assert.equal(r.applyBatch('n1', batch('e1', 4, [], ['a'])).resync, false, 'deltas continue after the snapshot');
  assert.equal(r.roomCount('r://1'), 1);
});

test('routing: a new gateway instance (epoch) replaces what the node held; seq ≠ 1 there also asks for a resync', () => {
  const r = new RoutingTable();
  r.applyBatch('n1', batch('e1', 1, [['old', '1', 'r://1']]));
  assert.equal(r.applyBatch('n1', batch('e2', 1, [['new', '1', 'r://1']])).resync, false);
  assert.deepEqual(r.keysForMids(['1']), ['new']);
  assert.equal(r.applyBatch('n1', batch('e3', 5, [['newer', '1', '']])).resync, true, 'joined mid-stream (controller restarted)');
});

test('routing: removing a node drops its keys, mids and counts at once', () => {
  const r = new RoutingTable();
  r.applyBatch('n1', batch('e1', 1, [['a', '1', 'r://1'], ['b', '2', 'r://1']]));
  r.applyBatch('n2', batch('e2', 1, [['c', '1', 'r://1']]));
  r.removeNode('n1');
  assert.equal(r.nodesForKeys(['a', 'b']).size, 0);
  assert.deepEqual(r.keysForMids(['1', '2']), ['c']);
  assert.equal(r.roomCount('r://1'), 1);
  assert.deepEqual(r.totals(), { conns: 1, ips: 1 });
  assert.deepEqual(r.nodeIds(), ['n2']);
});

test('routing: the same key on two nodes — the latest owns it, the older is reported, and owns it again if the newer leaves', () => {
  const r = new RoutingTable();
  r.applyBatch('n1', batch('e1', 1, [['k', '5', '']]));
  assert.deepEqual(r.applyBatch('n2', batch('e2', 1, [['k', '6', '']])).displaced, [{ nodeId: 'n1', key: 'k' }]);
  assert.deepEqual([...r.nodesForKeys(['k'])], [['n2', ['k']]]);
  assert.deepEqual(r.keysForMids(['5']), [], 'the mid index follows the owner');
  assert.deepEqual(r.keysForMids(['6']), ['k']);
  r.applyBatch('n2', batch('e2', 2, [], ['k']));
  assert.deepEqual([...r.nodesForKeys(['k'])], [['n1', ['k']]]);
  assert.deepEqual(r.keysForMids(['5']), ['k']);
  r.applyBatch('n1', batch('e1', 2, [], ['k']));
  assert.equal(r.nodesForKeys(['k']).size, 0);
  assert.deepEqual(r.keysForMids(['5', '6']), []);
});

test('balancer: goim’s weighting by connection share; an answer counts until the node reports again', () => {
  const b = new Balancer();
  const node = (id: string, conns: number, version = 1, weight = 10): BalancedNode => ({ id, hostname: id, addrs: [`${id}.addr`], weight, conns, version });
  b.update([node('a', 0), node('b', 0)]);
  assert.deepEqual(b.pick('').addrs, ['a.addr', 'b.addr'], 'no connections anywhere: every weight 0, ties by id');
  // a was chosen once (totalConns 1): a weighs 10 + round(0.5 - 0.5) = 10, b 10 + round(0.5·1) = 10 (goim rounds .5 down) → tie again.
  assert.deepEqual(b.pick('').addrs, ['a.addr', 'b.addr']);
  // a: 2 of 2 connections → 10 + 0; b: 0 → 10 + 1.
  assert.deepEqual(b.pick('.d').domains, ['b.d', 'a.d']);
  b.update([node('a', 90, 2), node('b', 10, 2, 30)]);
  // a: 10/40 − 90/100·0.5 < 0 → max(1, 10 − 20) = 1; b: 30/40 − 10/100·0.5 = 0.7 → 30 + 70 = 100.
  assert.deepEqual(b.pick('').addrs, ['b.addr', 'a.addr']);
  const many = new Balancer();
  many.update(Array.from({ length: 7 }, (_, i) => node(`n${i}`, 5)));
  assert.equal(many.pick('').addrs.length, 5, 'goim offers five nodes at most');
});

test('gin binding: scalars take the first value, slices need repetition, parse errors before validation', () => {
  const spec = { op: { form: 'operation', go: 'Op', type: 'int32', required: true }, rooms: { form: 'rooms', go: 'Rooms', type: 'strings', required: true } } as const;
  assert.deepEqual(bindQuery({ operation: ['5', '6'], rooms: ['a,b'] }, spec), { ok: true, v: { op: 5, rooms: ['a,b'] } });
  assert.deepEqual(bindQuery({ operation: ['0'], rooms: [''] }, spec), { ok: false, message: "Key: '.Op' Error:Field validation for 'Op' failed on the 'required' tag" }, 'present slice, even empty, satisfies required');
  assert.deepEqual(bindQuery({ operation: [' 5'] }, spec), { ok: false, message: 'strconv.ParseInt: parsing " 5": invalid syntax' });
  assert.deepEqual(bindQuery({ mids: ['', '-3', '9223372036854775807'] }, { mids: { form: 'mids', go: 'Mids', type: 'int64s' } } as const), { ok: true, v: { mids: ['0', '-3', '9223372036854775807'] } });
  assert.deepEqual(bindQuery({ constructor: ['x'] }, { c: { form: 'toString', go: 'C', type: 'string' } } as const), { ok: true, v: { c: '' } }, 'no prototype keys');
});

test('room keys: goim’s DecodeRoomKey (the URL host)', () => {
  assert.equal(roomIdOf('live://1000'), '1000');
  assert.equal(roomIdOf('live://1000/x?y'), '1000');
  assert.equal(roomIdOf('live://user@host:80/p'), 'host:80');
  assert.equal(roomIdOf('plain'), '');
  assert.equal(roomIdOf('live:1000'), '');
  assert.equal(roomIdOf('live://a b'), undefined);
  assert.equal(roomIdOf('1live://x'), undefined);
});

test('config: goim’s defaults, and errors that name the field', () => {
  const cfg = cometConfig.parse({});
  assert.deepEqual([cfg.host, cfg.tcp.port, cfg.ws.port, cfg.handshakeTimeoutMs, cfg.heartbeat], ['127.0.0.1', 3101, 3102, 5000, { seconds: 240, max: 2 }]);
  assert.equal(cfg.open, false);
  assert.equal(cfg.wss, undefined);
  const bad = (v: unknown) => {
    const r = cometConfig.safeParse(v);
    assert.ok(!r.success);
    return describeIssues(r.error);
  };
  assert.match(bad({ ws: { port: 70000 } }), /^ws\.port: /);
  assert.match(bad({ delivery: { roomBatchMs: 100 } }), /^delivery\.roomBatchMs: /, 'a batch may not wait past 50 ms');
  assert.match(bad({ auth: { jwt: { audience: 'x' } } }), /auth\.jwt: auth\.jwt needs keys, jwksFile or secret/);
  assert.match(bad({ wss: { port: 3103 } }), /^wss\.cert: /);
  assert.match(bad({ surprise: 1 }), /surprise/);
});

test('link message schemas accept what the halves produce and refuse what they must not', async () => {
  const { pushMsg, presenceMsg, controlMsg } = await import('../plugins/comet/messages.ts');
  assert.ok(pushMsg.safeParse({ kind: 'keys', op: 1000, keys: ['a'], body: Buffer.from([0, 1]) }).success);
  assert.ok(pushMsg.safeParse({ kind: 'all', op: 1000, speed: 0, body: Buffer.alloc(0) }).success);
  assert.ok(!pushMsg.safeParse({ kind: 'room', op: 1000, room: '', body: Buffer.alloc(0) }).success, 'a room push names a room');
  assert.ok(!pushMsg.safeParse({ kind: 'keys', op: 2 ** 31, keys: [], body: Buffer.alloc(0) }).success, 'op is an int32');
  assert.ok(!pushMsg.safeParse({ kind: 'keys', op: 1, keys: [], body: 'text' }).success, 'the body travels as bytes');
  const b = batch('e', 1, [['k', '1', 'r://1']], ['x']);
  assert.ok(presenceMsg.safeParse({ t: 'changes', batch: b }).success);
  assert.ok(presenceMsg.safeParse({ t: 'snapshot', snapshot: { epoch: 'e', seq: 0, conns: [], ips: 0 }, meta: { addrs: ['10.0.0.1'], weight: 10 } }).success);
  assert.ok(controlMsg.safeParse({ t: 'rooms', counts: [['live://1', 3], ['__proto__', 1]] }).success, 'pairs: any room id, __proto__ included');
  assert.ok(!controlMsg.safeParse({ t: 'rooms', counts: [['live://1', -1]] }).success);
  assert.ok(controlMsg.safeParse({ t: 'ack', epoch: 'e', seq: 3 }).success);
  assert.ok(!controlMsg.safeParse({ t: 'ack', epoch: 'e', seq: 0 }).success, 'batches count from 1');
  assert.ok(controlMsg.safeParse({ t: 'kick', keys: ['k'] }).success);
  assert.ok(presenceMsg.safeParse({ t: 'snapshot', snapshot: { epoch: 'e', seq: 0, conns: [], ips: 0 }, meta: { addrs: [], weight: 1 }, part: [1, 2] }).success);
});
