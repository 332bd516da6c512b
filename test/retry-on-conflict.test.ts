import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryOnConflict, StorageConflictError } from '../plugins/sdk/durable/storage-error.ts';

test('retryOnConflict runs a write again after a conflict, gives up after its attempts, and passes other errors at once', async () => {
  let calls = 0;
  assert.equal(await retryOnConflict(async () => (++calls < 3 ? Promise.reject(new StorageConflictError('nodes', ['nodes/n1'])) : 'written')), 'written');
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(retryOnConflict(async () => { calls++; throw new StorageConflictError('nodes', ['pending']); }, 4), StorageConflictError);
  assert.equal(calls, 4);
  calls = 0;
  await assert.rejects(retryOnConflict(async () => { calls++; throw new Error('disk on fire'); }), /disk on fire/);
  assert.equal(calls, 1);
});
