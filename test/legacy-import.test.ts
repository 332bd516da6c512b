/** plugins/sdk/durable/legacy-json.ts: files of older releases carried into their replacement once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importLegacyJson, importLegacyLines } from '../plugins/sdk/index.ts';

async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-legacy-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('JSON lines: the records that parse are taken (a torn last line left out), then the file is set aside; a second start finds nothing', () =>
  inTemp(async (dir) => {
    await writeFile(join(dir, 'old.jsonl'), '{"a":1}\n\n{"a":2}\n{"__proto__":{"x":1},"a":3}\n{"a":');
    const taken: unknown[][] = [];
    await importLegacyLines(dir, 'old.jsonl', async (records) => void taken.push(records));
    assert.equal(taken.length, 1);
    // Objects come back without a prototype (parseStoredJson), so compare their JSON.
    assert.equal(JSON.stringify(taken[0].slice(0, 2)), '[{"a":1},{"a":2}]');
    assert.equal(taken[0].length, 3);
    assert.equal(({} as Record<string, unknown>).x, undefined, 'a __proto__ key reached no prototype');
    assert.deepEqual(await readdir(dir), ['old.jsonl.migrated']);
    await importLegacyLines(dir, 'old.jsonl', async () => assert.fail('imported twice'));
  }));

test('JSON lines: a take that throws leaves the file in place for the next start', () =>
  inTemp(async (dir) => {
    await writeFile(join(dir, 'old.jsonl'), '{"a":1}\n');
    await assert.rejects(importLegacyLines(dir, 'old.jsonl', async () => { throw new Error('disk full'); }), /disk full/);
    assert.deepEqual(await readdir(dir), ['old.jsonl']);
  }));

test('JSON: a file that is not JSON is refused naming it; a missing file is no import', () =>
  inTemp(async (dir) => {
    await importLegacyJson(dir, 'none.json', async () => assert.fail('nothing to import'));
    await writeFile(join(dir, 'bad.json'), '{"a":');
    await assert.rejects(importLegacyJson(dir, 'bad.json', async () => undefined), /bad\.json \(from an older release\) is not valid JSON/);
  }));
