/** The agent's report outbox on the durable log: order and seqs across restarts, a full disk, the old outbox.json. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentOutbox } from '../agent/outbox.ts';
import { StorageHealth } from '../plugins/sdk/durable/health.ts';
import { StorageWriteError } from '../plugins/sdk/durable/storage-error.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { tempDir } from './helpers/cluster.ts';
import { FaultyFs } from './helpers/faulty-fs.ts';

const log = createLog('test', 'silent');

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir('outpost-agent-outbox-');
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('reports keep their seqs and order across reopens; acks and the seq floor persist; the oldest are dropped past the limit', () =>
  withDir(async (dir) => {
    const a = await AgentOutbox.open(dir, 5, { log });
    for (let i = 1; i <= 4; i++) assert.equal((await a.add('p', 't', { i })).seq, i);
    await a.ack(2);
    await a.bumpSeq(10);
    assert.equal((await a.add('p', 't', { i: 11 })).seq, 11);
    await a.close();
    const b = await AgentOutbox.open(dir, 5, { log });
    assert.deepEqual(b.after(0, 100).map((x) => x.seq), [3, 4, 11]);
    assert.equal(b.lastSeq(), 11);
    for (let i = 0; i < 4; i++) await b.add('p', 't', {});
    assert.deepEqual(b.after(0, 100).map((x) => x.seq), [11, 12, 13, 14, 15]);
    assert.equal(b.dropped(), 2);
    assert.deepEqual(b.after(11, 2).map((x) => x.seq), [12, 13]);
    await b.close();
    const c = await AgentOutbox.open(dir, 5, { log });
    assert.deepEqual(c.after(0, 100).map((x) => x.seq), [11, 12, 13, 14, 15]);
    assert.equal(c.dropped(), 2);
    await c.close();
  }));

test('disk full: report() fails with a StorageWriteError and keeps nothing; reports are taken again once space returns; nothing acknowledged is lost', () =>
  withDir(async (dir) => {
    const fs = new FaultyFs();
    const health = new StorageHealth();
    const a = await AgentOutbox.open(dir, 1000, { log, health, fs });
    const kept: number[] = [];
    for (let i = 0; i < 3; i++) kept.push((await a.add('server-stats', 'sample', { i })).seq);
    fs.free = 10;
    for (let i = 0; i < 3; i++) {
      const err = await a.add('server-stats', 'sample', { lost: i, pad: 'x'.repeat(50) }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof StorageWriteError && err.full, `add ${i} while full: ${String(err)}`);
    }
    assert.equal(a.size(), 3, 'a refused report is not queued');
    assert.equal(health.problems()[0]?.store, 'outbox');
    // An ack while full is kept in memory and does not throw (the link goes on).
    await a.ack(kept[0]);
    assert.equal(a.size(), 2);
    fs.free = Infinity;
    for (let i = 0; i < 3; i++) kept.push((await a.add('server-stats', 'sample', { after: i })).seq);
    assert.deepEqual(health.problems(), []);
    await a.close();
    const b = await AgentOutbox.open(dir, 1000, { log });
    const seqs = b.after(0, 100).map((x) => x.seq);
    for (const s of kept.slice(1)) assert.ok(seqs.includes(s), `report ${s} survived`);
    assert.ok(!b.after(0, 100).some((x) => (x.data as { lost?: number }).lost !== undefined), 'no refused report came back');
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `seqs in order: ${seqs}`);
    await b.close();
  }));

test('an outbox.json from an older release is imported once and kept aside', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'outbox.json'), JSON.stringify({ seq: 7, dropped: 1, items: [{ seq: 6, plugin: 'p', type: 't', data: { a: 1 }, ts: 1 }, { seq: 7, plugin: 'p', type: 't', data: { a: 2 }, ts: 2 }] }));
    const a = await AgentOutbox.open(dir, 1000, { log });
    assert.deepEqual(a.after(0, 10).map((x) => x.seq), [6, 7]);
    assert.equal((await a.add('p', 't', {})).seq, 8);
    assert.equal(a.dropped(), 1);
    await a.close();
    await assert.rejects(stat(join(dir, 'outbox.json')), /ENOENT/);
    assert.match(await readFile(join(dir, 'outbox.json.migrated'), 'utf8'), /"seq":7/);
    const b = await AgentOutbox.open(dir, 1000, { log });
    assert.deepEqual(b.after(0, 10).map((x) => x.seq), [6, 7, 8]);
    await b.close();
  }));
