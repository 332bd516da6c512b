/**
 * What the halves exchange about presence, below the link: change batches and snapshots cut under
 * the link's 1 MiB bound whatever the keys hold, snapshot parts assembled (or dropped and asked
 * again), acks that release op 8, room counts sent as changes, per-node counters as increments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeFeed, type ChangeBatch, type ConnTuple } from '../plugins/comet/gateway/change-feed.ts';
import { presenceMsg, type PresenceMsg } from '../plugins/comet/messages.ts';
import { PresenceIntake } from '../plugins/comet/logic/presence-intake.ts';
import { RoomCountSync } from '../plugins/comet/logic/room-count-sync.ts';
import { NodeCounters } from '../plugins/comet/logic/node-counters.ts';
import { RoutingTable } from '../plugins/comet/logic/routing.ts';
import { Uplink } from '../plugins/comet/uplink.ts';
import { chunkByBytes, PART_BYTES, wireBytes } from '../plugins/comet/wire-size.ts';
import { encodeMessage } from '../runtime/link-codec.ts';

const meta = { addrs: ['127.0.0.1'], weight: 10 };
/** A key as long as an auth body allows, made of characters JSON escapes (6 bytes each on the wire). */
const hugeKey = (i: number) => `${i}:` + '\u0001'.repeat(4000);

test('chunkByBytes: runs under the budget in order, an oversized item alone, never an empty message list', () => {
  const items = ['a'.repeat(10), 'b'.repeat(10), 'c'.repeat(30), 'd'];
  const parts = chunkByBytes(items, 30);
  assert.deepEqual(parts.flat(), items);
  for (const p of parts) assert.ok(p.length === 1 || p.reduce((n, x) => n + wireBytes(x), 0) <= 30);
  assert.deepEqual(chunkByBytes([], 30), [[]], 'an empty snapshot still goes (it says: no connections)');
});

test('the change feed leaves in batches under the link bound when keys are huge; each encodes', async () => {
  const batches: ChangeBatch[] = [];
  const feed = new ChangeFeed((b) => void batches.push(b), 10_000, () => ({ conns: 0, ips: 0 }), (err) => assert.fail(String(err)));
  for (let i = 0; i < 300; i++) feed.note(hugeKey(i), [hugeKey(i), String(i), 'live://1']);
  feed.flush();
  feed.close();
  assert.ok(batches.length > 1, 'cut by bytes, not by the 2000-key count');
  assert.deepEqual(batches.map((b) => b.seq), batches.map((_, i) => i + 1));
  assert.equal(batches.reduce((n, b) => n + b.upserts.length, 0), 300);
  // What the agent would send: the link's codec accepts every one (it throws past 1 MiB).
  for (const b of batches) encodeMessage('comet', 'presence', { t: 'changes', batch: b } satisfies PresenceMsg);
});

test('snapshots are cut into parts the controller assembles; a part lost drops the snapshot and asks again', () => {
  const conns: ConnTuple[] = Array.from({ length: 200 }, (_, i) => [hugeKey(i), String(i), i % 2 ? 'live://1' : 'live://2']);
  const sent: PresenceMsg[] = [];
  const up = new Uplink((m) => (sent.push(m), true), () => meta);
  up.snapshot({ epoch: 'e', seq: 4, conns, ips: 3 });
  assert.ok(sent.length > 1);
  for (const m of sent) {
    assert.ok(presenceMsg.safeParse(m).success);
    encodeMessage('comet', 'presence', m);
  }
  const routing = new RoutingTable();
  const intake = new PresenceIntake(routing);
  const results = sent.map((m) => intake.apply('n1', m));
  assert.deepEqual(results.map((r) => r.snapshot), [...sent.slice(1).map(() => false), true], 'applied once, when the last part arrives');
  assert.equal(routing.totals().conns, 200);
  assert.equal(routing.roomCount('live://1'), 100);

  const again: PresenceMsg[] = [];
  const up2 = new Uplink((m) => (again.push(m), true), () => meta);
  up2.snapshot({ epoch: 'e2', seq: 1, conns: conns.slice(0, 100), ips: 1 });
  const lost = again.filter((_, i) => i !== 1);
  const r = lost.map((m) => intake.apply('n1', m));
  assert.ok(r.some((x) => x.resync), 'a gap asks for a new snapshot');
  assert.ok(r.every((x) => !x.snapshot), 'never applied half');
  assert.equal(routing.totals().conns, 200, 'the tables stay as they were');
});

test('a batch is acknowledged after it is applied; the uplink resolves its waiters then, or after 2 s without a link answer', async () => {
  const sent: PresenceMsg[] = [];
  let linkUp = true;
  const up = new Uplink((m) => (sent.push(m), linkUp), () => meta);
  const b = (seq: number): ChangeBatch => ({ epoch: 'e', seq, upserts: [[`k${seq}`, '1', '']], removes: [], conns: seq, ips: 1 });
  let settled = 0;
  const p1 = up.changes(b(1)).then(() => settled++);
  const p2 = up.changes(b(2)).then(() => settled++);
  assert.ok((sent[0] as { meta?: unknown }).meta, 'the first batch tells where clients reach the node');
  assert.equal((sent[1] as { meta?: unknown }).meta, undefined);
  const intake = new PresenceIntake(new RoutingTable());
  const r = intake.apply('n1', sent[1]);
  assert.deepEqual(r.ack, { epoch: 'e', seq: 2 });
  up.acked('other-epoch', 'e', 2);
  await new Promise((res) => setImmediate(res));
  assert.equal(settled, 0, 'an ack for another gateway instance releases nothing');
  up.acked(r.ack!.epoch, 'e', r.ack!.seq);
  await Promise.all([p1, p2]);
  assert.equal(settled, 2, 'an ack covers every batch up to its seq');
  linkUp = false;
  await up.changes(b(3));
  up.close();
});

test('room counts go to each node as changes, in parts under the bound; forgetting a node resends all', () => {
  const sync = new RoomCountSync();
  const counts = new Map<string, number>([['live://1', 3], ['__proto__', 2]]);
  assert.deepEqual(sync.changes('n1', counts), [[['live://1', 3], ['__proto__', 2]]]);
  assert.deepEqual(sync.changes('n1', counts), [], 'nothing changed: nothing sent');
  counts.set('live://1', 4);
  assert.deepEqual(sync.changes('n1', counts), [[['live://1', 4]]]);
  sync.forget('n1');
  assert.equal(sync.changes('n1', counts)[0].length, 2);
  const many = new Map(Array.from({ length: 300 }, (_, i): [string, number] => [hugeKey(i), i + 1]));
  const parts = sync.changes('n2', many);
  assert.ok(parts.length > 1);
  for (const p of parts) encodeMessage('comet', 'control', { t: 'rooms', counts: p });
  assert.equal(parts.flat().length, 300);
  assert.ok(PART_BYTES < 1024 * 1024);
});

test('node counters: increments from totals, a restarted gateway counts from zero', () => {
  const c = new NodeCounters();
  const s = (epoch: string, delivered: number, dropped: number) => ({ epoch, delivered, dropped, handshaking: 0, rooms: 0 });
  assert.deepEqual(c.apply('n1', s('a', 10, 1)), { delivered: 10, dropped: 1 });
  assert.deepEqual(c.apply('n1', s('a', 25, 1)), { delivered: 15, dropped: 0 });
  assert.deepEqual(c.apply('n1', s('b', 4, 0)), { delivered: 4, dropped: 0 });
  assert.equal(c.latest('n1')?.delivered, 4);
});
