/**
 * How a store's document maps onto rows (runtime/storage/postgres/store-rows.ts), for the commits
 * that name their touches: the rows compared are those named plus their fields' own rows, and a
 * field replaced or turned into an object sends the commit back to comparing everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffRows, diffRowsAt, pickRows, rowsOf, touchedRows } from '../runtime/storage/postgres/store-rows.ts';

test('touched rows: each entry with its field\'s own row, once', () => {
  assert.deepEqual(touchedRows([['nodes', 'a'], ['nodes', 'b'], ['pending'], ['nodes', 'a']]), [
    ['nodes', ''],
    ['nodes', '/a'],
    ['nodes', '/b'],
    ['pending', ''],
  ]);
});

test('diffRowsAt says of the named rows what the full diff says, and gives up where a field changed kind', () => {
  const data: Record<string, any> = { nodes: { a: { n: 1 }, b: { n: 2 } }, pending: [1], plain: 'x' };
  const written = rowsOf(data);
  data.nodes.a.n = 10;
  delete data.nodes.b;
  data.nodes.c = { n: 3 };
  data.pending.push(2);
  data.other = { z: 1 };
  const keys = touchedRows([['nodes', 'a'], ['nodes', 'b'], ['nodes', 'c'], ['pending']]);
  const full = diffRows(written, rowsOf(data));
  const some = diffRowsAt(written, data, keys)!;
  const sorted = (list: typeof full) => [...list].sort((x, y) => `${x.field}${x.entry}`.localeCompare(`${y.field}${y.entry}`));
  assert.deepEqual(sorted(some), sorted(full.filter((c) => c.field !== 'other')), 'the same changes for the named rows; `other` was not named');
  assert.deepEqual(pickRows(data, keys).get('nodes')?.get('/a'), '{"n":10}');
  // A new object field named with one of its entries: its own row and the entry.
  assert.deepEqual(diffRowsAt(written, data, touchedRows([['other', 'z']])), [
    { field: 'other', entry: '', text: '{}' },
    { field: 'other', entry: '/z', text: '1' },
  ]);
  // An object field replaced by a plain value, or a plain field made an object: only a full diff knows.
  assert.equal(diffRowsAt(written, { ...data, nodes: 5 }, touchedRows([['nodes', 'a']])), undefined);
  assert.equal(diffRowsAt(written, { ...data, plain: { k: 1 } }, touchedRows([['plain', 'k']])), undefined);
  assert.equal(diffRowsAt(written, { ...data, nodes: undefined }, touchedRows([['nodes', 'a']])), undefined);
});
