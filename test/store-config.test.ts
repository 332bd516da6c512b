/**
 * The controller's `store` setting and the PostgreSQL store's row mapping, without a database: which
 * store a config and OUTPOST_STORE_URL select, that a URL's password appears in no message, and how a
 * document maps onto rows and back (the PostgreSQL store itself runs in test/e2e/store-postgres.e2e.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveStore, StoreConfig } from '../runtime/storage/store-config.ts';
import { applyRows, countRows, diffRows, documentOf, rowsOf, textOf } from '../runtime/storage/postgres/store-rows.ts';
import { ControllerConfig } from '../controller/config.ts';
import { run, tempDir } from './helpers/cluster.ts';

const PASSWORD = 'pa55-w0rd-not-to-print';
const URL_ = `postgres://outpost:${PASSWORD}@db.example.invalid:5432/outpost`;

test('store config: lowdb by default; postgres from the config or from OUTPOST_STORE_URL, which wins; the URL is a secret', () => {
  assert.deepEqual(resolveStore(ControllerConfig.parse({}).store, {}), { kind: 'lowdb' });
  const fromFile = resolveStore(StoreConfig.parse({ kind: 'postgres', url: URL_ }), {});
  assert.equal(fromFile.kind, 'postgres');
  if (fromFile.kind !== 'postgres') return;
  assert.equal(fromFile.url.reveal(), URL_);
  assert.equal(fromFile.poolSize, 10);
  for (const shown of [JSON.stringify(fromFile), inspect(fromFile), `${fromFile.url}`]) assert.doesNotMatch(shown, new RegExp(PASSWORD), shown);
  const other = 'postgres://u:other-secret@127.0.0.1:6543/x';
  const fromEnv = resolveStore(StoreConfig.parse({ kind: 'postgres', url: URL_, poolSize: 4 }), { OUTPOST_STORE_URL: other });
  assert.ok(fromEnv.kind === 'postgres' && fromEnv.url.reveal() === other && fromEnv.poolSize === 4, 'env wins, the rest of the config stays');
  assert.doesNotMatch(inspect(fromEnv), /other-secret/);
  const envAlone = resolveStore(StoreConfig.parse({ kind: 'lowdb' }), { OUTPOST_STORE_URL: other });
  assert.equal(envAlone.kind, 'postgres', 'the env alone selects PostgreSQL');
});

test('store config: a bad URL, a missing one or a bad field is refused naming the problem, never quoting the URL', async () => {
  const bad = StoreConfig.safeParse({ kind: 'postgres', url: `mysql://root:${PASSWORD}@h/db` });
  assert.equal(bad.success, false);
  assert.match(JSON.stringify(bad.error?.issues), /must start with postgres:\/\/ or postgresql:\/\//);
  assert.doesNotMatch(JSON.stringify(bad.error?.issues), new RegExp(PASSWORD));
  assert.match(JSON.stringify(StoreConfig.safeParse({ kind: 'postgres', url: `postgres://u:${PASSWORD}@h` }).error?.issues), /names no database/);
  assert.equal(StoreConfig.safeParse({ kind: 'postgres', url: URL_, poolSize: 1 }).success, false);
  assert.equal(StoreConfig.safeParse({ kind: 'mongo' }).success, false);
  assert.throws(() => resolveStore(StoreConfig.parse({ kind: 'postgres' }), {}), /no URL is set: put it in store.url or in the environment as OUTPOST_STORE_URL/);
  assert.throws(() => resolveStore(StoreConfig.parse({ kind: 'lowdb' }), { OUTPOST_STORE_URL: `http://x:${PASSWORD}@h/db` }), (err: Error) => /^OUTPOST_STORE_URL must start with postgres:\/\//.test(err.message) && !err.message.includes(PASSWORD));
  assert.throws(() => resolveStore(StoreConfig.parse({ kind: 'postgres', url: URL_, ssl: { ca: '/nonexistent/ca.pem' } }), {}), /store\.ssl\.ca: cannot read \/nonexistent\/ca\.pem/);

  // The controller itself: a config naming an unreachable database fails the start in one line, no password.
  const dir = await tempDir('outpost-store-config-');
  try {
    const file = join(dir, 'controller.json');
    await writeFile(file, JSON.stringify({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'data'), store: { kind: 'postgres', url: `postgres://outpost:${PASSWORD}@127.0.0.1:1/outpost`, timeoutMs: 2000 } }));
    const p = run(['controller', '--config', file]);
    assert.equal(await p.exited, 1);
    assert.match(p.output(), /outpost: cannot use PostgreSQL at 127\.0\.0\.1:1\/outpost: connect ECONNREFUSED/);
    assert.doesNotMatch(p.output(), new RegExp(PASSWORD));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('store rows: a row per field and per entry of an object field; a change writes its own rows only; rows make the document again', () => {
  const doc = { nodes: { a: { n: 1 }, b: { n: 2 } }, pending: [1, 2], admin: null, gone: undefined, count: 3, empty: {} };
  const rows = rowsOf(doc);
  assert.deepEqual([...rows.keys()], ['nodes', 'pending', 'admin', 'count', 'empty'], 'undefined is left out, as JSON does');
  assert.deepEqual([...rows.get('nodes')!], [['', '{}'], ['/a', '{"n":1}'], ['/b', '{"n":2}']]);
  const back = documentOf(rows);
  assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(doc)));
  assert.equal(Object.getPrototypeOf(back.nodes), null);

  const changed = { ...doc, nodes: { a: { n: 1 }, c: { n: 3 } }, count: 4 };
  assert.deepEqual(
    diffRows(rows, rowsOf(changed)).map((c) => [c.field, c.entry, c.text]),
    [['nodes', '/c', '{"n":3}'], ['count', '', '4'], ['nodes', '/b', undefined]],
  );
  // An entry key that looks like a path, or is __proto__, is still one entry.
  const odd = rowsOf({ m: JSON.parse('{"a/b":1,"__proto__":{"x":1},"":2}') });
  assert.deepEqual([...odd.get('m')!.keys()], ['', '/a/b', '/__proto__', '/']);
  const again = documentOf(odd) as { m: Record<string, unknown> };
  assert.ok(Object.hasOwn(again.m, '__proto__') && Object.hasOwn(again.m, '') && again.m['a/b'] === 1);
});

test('store rows: applying rows changes records in place, so code holding one keeps seeing the store', () => {
  const data = JSON.parse('{"nodes":{"a":{"state":"up","labels":{"z":"1"}}},"list":[1,2,3],"n":1}') as { nodes: Record<string, { state: string; labels?: Record<string, string> }>; list: number[]; n: number; extra?: Record<string, number> };
  const held = data.nodes.a;
  const list = data.list;
  const stored = rowsOf({ nodes: { a: { state: 'down' }, b: { state: 'up' } }, list: [9], n: 2, extra: { k: 1 } });
  applyRows(data, stored, diffRows(rowsOf(data), stored));
  assert.equal(data.nodes.a, held, 'the same record object');
  assert.deepEqual(JSON.parse(JSON.stringify(held)), { state: 'down' }, 'its fields are the stored ones (labels gone)');
  assert.equal(data.list, list);
  assert.deepEqual(list, [9]);
  assert.deepEqual(JSON.parse(JSON.stringify(data)), { nodes: { a: { state: 'down' }, b: { state: 'up' } }, list: [9], n: 2, extra: { k: 1 } });
});

test('store rows: textOf gives one row as rowsOf writes it (what a catch-up compares with), undefined for rows not there', () => {
  class Stamp {
    toJSON() {
      return 'stamp';
    }
  }
  const doc = { nodes: { a: { name: 'a' }, u: undefined, b: [1, 2] }, count: 3, gone: undefined, stamp: new Stamp(), list: [{ x: 1 }] };
  const rows = rowsOf(doc);
  let n = 0;
  for (const [field, m] of rows) {
    for (const [entry, text] of m) {
      n++;
      assert.equal(textOf(doc, field, entry), text, `${field}${entry}`);
    }
  }
  assert.equal(countRows(rows), n);
  assert.equal(n, 6, 'nodes, nodes/a, nodes/b, count, stamp, list');
  for (const [field, entry] of [['nodes', '/u'], ['nodes', '/missing'], ['gone', ''], ['absent', ''], ['count', '/x'], ['nodes', '/toString']]) {
    assert.equal(textOf(doc, field, entry), rows.get(field)?.get(entry), `${field}${entry} is no row`);
    assert.equal(textOf(doc, field, entry), undefined);
  }
});
