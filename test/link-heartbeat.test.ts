import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMessage, LINK_LIMITS } from '../runtime/link.ts';
import { fastHeartbeat } from '../runtime/link-heartbeat.ts';

const good = { t: 'hb', seq: 7, ts: 1_700_000_000_000, summary: { plugins: [{ name: 'server-stats', state: 'running' }, { name: 'prober', state: 'failed', error: 'boom' }], outbox: 3 } };

/** Values put in place of one field: each either valid or not for it, the schema tells which. */
const odd: unknown[] = [undefined, null, 0, -1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, '', 'x', 'running', 'x'.repeat(LINK_LIMITS.names + 1), 'e'.repeat(LINK_LIMITS.error + 1), true, [], [1], {}, { name: 'a', state: 'running' }, { name: 'a', state: 'gone' }, { name: 'a', state: 'stopped', error: 5 }];

/** Every message with one field (at any depth) replaced by each odd value. */
function* variants(): Generator<unknown> {
  yield good;
  yield { ...good, summary: {} };
  yield { ...good, extra: 'dropped' };
  yield { ...good, summary: { ...good.summary, junk: 1, plugins: [{ ...good.summary.plugins[1], junk: 'dropped' }] } };
  yield { ...good, summary: { ...good.summary, plugins: Array.from({ length: LINK_LIMITS.plugins + 1 }, (_, i) => ({ name: `p${i}`, state: 'running' })) } };
  for (const v of odd) {
    for (const k of ['t', 'seq', 'ts', 'summary'] as const) yield { ...good, [k]: v };
    yield { ...good, summary: { ...good.summary, plugins: v } };
    yield { ...good, summary: { ...good.summary, outbox: v } };
    yield { ...good, summary: { ...good.summary, plugins: [v] } };
    for (const k of ['name', 'state', 'error']) yield { ...good, summary: { ...good.summary, plugins: [{ ...good.summary.plugins[1], [k]: v }] } };
  }
}

test('fastHeartbeat accepts only what the schema accepts, with the same result; the rest is left to the schema', () => {
  let accepted = 0;
  let rejected = 0;
  for (const raw of variants()) {
    // Through JSON, as on the wire (undefined fields vanish there).
    const msg = JSON.parse(JSON.stringify(raw));
    const fast = fastHeartbeat(msg);
    const schema = AgentMessage.safeParse(msg);
    if (fast === undefined) {
      rejected++;
      continue;
    }
    accepted++;
    assert.ok(schema.success, `fast path accepted what the schema refuses: ${JSON.stringify(msg).slice(0, 200)}`);
    assert.deepEqual(fast, schema.data, JSON.stringify(msg).slice(0, 200));
  }
  assert.ok(accepted >= 10 && rejected >= 50, `accepted ${accepted}, rejected ${rejected}`);
  // A valid heartbeat the fast path takes: every usual one.
  assert.deepEqual(fastHeartbeat(JSON.parse(JSON.stringify(good))), AgentMessage.parse(good));
  assert.equal(fastHeartbeat({ ...good, extra: 1 })?.summary.plugins?.length, 2);
  assert.equal('extra' in (fastHeartbeat({ ...good, extra: 1 }) as object), false, 'unknown keys are not kept');
});
