/**
 * Reports survive controller and agent crashes: every sample seq the agent produced is applied by the
 * controller exactly once. Observed three ways: the controller's applied seq against the agent's outbox,
 * the applied-reports counter on /metrics, and server-stats history (one sample per seq, in order).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestController, TestAgent, until, sleep } from './helpers/cluster.ts';
import { parsePrometheus, valueOf } from './helpers/prom.ts';
import { openRawLink, sampleReport } from './helpers/raw-link.ts';
import { AgentOutbox, type OutboxItem } from '../agent/outbox.ts';
import { createLog } from '../plugins/sdk/log.ts';

const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;
/** The agent's outbox as on disk: the last seq handed out and the reports still held. */
async function outboxOf(a: TestAgent): Promise<{ seq: number; items: OutboxItem[] }> {
  const ob = await AgentOutbox.open(a.dataDir, Infinity, { readOnly: true, log: createLog('test', 'silent') });
  return { seq: ob.lastSeq(), items: ob.after(0, Infinity) };
}
/** The controller's applied seq for a node, as persisted (read while it is down or after it answered). */
const appliedSeq = async (c: TestController, nodeId: string) => (await readJson<{ seqs: Record<string, number> }>(join(c.dataDir, 'seqs.json'))).seqs[nodeId] ?? 0;

async function appliedCounter(c: TestController): Promise<number> {
  const r = await c.api('GET', '/metrics', undefined, '');
  return valueOf(parsePrometheus(r.text), 'outpost_reports_applied_total', { plugin: 'server-stats' }) ?? 0;
}

async function history(c: TestController, nodeId: string): Promise<Array<{ ts: number }>> {
  const r = await c.api('GET', `/api/v1/nodes/${nodeId}/stats`);
  assert.equal(r.status, 200, r.text);
  return r.body.history;
}

/**
 * Stops the agent (so no new seq appears) and checks that every seq 1..S is either applied once or still
 * waiting in the outbox, and that the controller's stats history holds exactly one sample per applied seq.
 */
async function assertExactlyOnce(c: TestController, a: TestAgent, maxGapMs: number): Promise<void> {
  await until('outbox drained', async () => (await a.local('GET', '/v1/monitor')).body?.outbox === 0, 20_000);
  await a.kill('SIGTERM');
  const box = await outboxOf(a);
  const applied = await until('controller caught up', async () => {
    const s = await appliedSeq(c, a.nodeId);
    return s >= box.seq - box.items.length ? s : undefined;
  });
  // Every seq above what was applied is still held by the agent, in order: nothing lost in between.
  const pending = box.items.map((i) => i.seq).filter((s) => s > applied);
  assert.deepEqual(pending, Array.from({ length: box.seq - applied }, (_, i) => applied + i + 1), `applied ${applied}, produced ${box.seq}`);
  const h = await history(c, a.nodeId);
  assert.equal(h.length, applied, `history holds ${h.length} samples for ${applied} applied reports`);
  for (let i = 1; i < h.length; i++) {
    assert.ok(h[i].ts > h[i - 1].ts, `sample ${i} not after sample ${i - 1}`);
    assert.ok(h[i].ts - h[i - 1].ts <= maxGapMs, `gap of ${h[i].ts - h[i - 1].ts} ms between samples ${i - 1} and ${i}`);
  }
}

// One controller for the file (each test crashes and restarts it); starting processes is the slow part.
let c: TestController;
before(async () => {
  c = await TestController.start();
});
after(async () => {
  await c?.stop();
});

/** An agent sampling every second, once the controller has applied its first n samples. */
async function samplingAgent(name: string, n: number): Promise<TestAgent> {
  const a = await TestAgent.start(c, { name, plugins: { 'server-stats': { interval: 1, diskInterval: 5 } } });
  await until(`${n} samples applied`, async () => (await history(c, a.nodeId)).length >= n);
  return a;
}

/** SIGKILLs the controller, then waits until the agent has queued n reports it cannot deliver. */
async function crashController(a: TestAgent, n: number): Promise<void> {
  c.proc.child.kill('SIGKILL');
  await c.proc.exited;
  await until('reports queue in the agent outbox', async () => (await outboxOf(a)).items.length >= n, 15_000);
}

test('controller SIGKILLed for a few seconds while the agent keeps sampling: every report applied exactly once', async (t) => {
  const a = await samplingAgent('dur-ctl', 3);
  try {
    const outage = Date.now();
    // The agent keeps sampling into its outbox while the controller is gone.
    await crashController(a, 3);
    const appliedAtCrash = await appliedSeq(c, a.nodeId);
    await sleep(Math.max(0, 3000 - (Date.now() - outage)));
    await c.restart();
    await until('agent reconnected and replayed', async () => (await c.node(a.nodeId))?.connected && (await a.local('GET', '/v1/monitor')).body?.outbox === 0, 20_000);
    const producedBeforeStop = (await outboxOf(a)).seq;
    // Sampling never stopped: at most two intervals between samples, across the outage too.
    await assertExactlyOnce(c, a, 2 * 1000 + 1000);
    // Since the restart, the controller applied each seq after the crash point exactly once.
    const finalApplied = await appliedSeq(c, a.nodeId);
    assert.equal(await appliedCounter(c), finalApplied - appliedAtCrash);
    assert.ok(finalApplied >= producedBeforeStop);
    t.diagnostic(`applied ${appliedAtCrash} before the crash, ${finalApplied - appliedAtCrash} after, ${finalApplied} in all`);
  } finally {
    await a.stop();
  }
});

test('agent SIGKILLed with unacknowledged reports while the controller is down: they are replayed after both restart', async (t) => {
  const a = await samplingAgent('dur-agent', 2);
  try {
    await crashController(a, 2);
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    const held = (await outboxOf(a)).items.map((i) => i.seq);
    assert.ok(held.length >= 2);
    // The agent comes back first and keeps sampling, still with no controller.
    await a.restart();
    const agentDownMs = Date.now() - killedAt;
    await until('more reports queued after the agent restart', async () => (await outboxOf(a)).seq >= held.at(-1)! + 2, 15_000);
    await c.restart();
    await until('replayed', async () => (await appliedSeq(c, a.nodeId)) >= held.at(-1)!, 20_000);
    // The only gap allowed is the time the agent was dead.
    await assertExactlyOnce(c, a, agentDownMs + 2 * 1000 + 1000);
    t.diagnostic(`replayed ${held.length} reports held across the agent crash`);
  } finally {
    await a.stop();
  }
});

test('a reconnect that replaces a connection still applying reports applies each seq once', async () => {
  const appliedBefore = await appliedCounter(c);
  const enrolled = await c.api('POST', '/api/v1/enroll', { token: await c.joinToken(), name: 'racer' }, '');
  const { nodeId, credential } = enrolled.body as { nodeId: string; credential: string };
  const N = 300;
  // server-stats journals each sample before the ack, so applying takes real I/O time: a wide window for a race.
  const t0 = Date.now();
  // First connection: a burst of reports, each applied behind a durable seq write.
  const first = await openRawLink(c.url, credential);
  void first.hello(nodeId);
  for (let seq = 1; seq <= N; seq++) first.send(sampleReport(seq, t0));
  // Second connection replaces it at once and replays everything, a superset of what any agent would resend.
  const second = await openRawLink(c.url, credential);
  const welcome = await second.hello(nodeId);
  for (let seq = 1; seq <= N; seq++) second.send(sampleReport(seq, t0));
  await until('all seqs applied', async () => (await appliedSeq(c, nodeId)) === N, 30_000);
  await sleep(300);
  const r = await c.api('GET', '/metrics', undefined, '');
  assert.equal(valueOf(parsePrometheus(r.text), 'outpost_reports_applied_total', { plugin: 'server-stats' }), appliedBefore + N, `welcome said lastSeq ${welcome.lastSeq}`);
  assert.equal((await history(c, nodeId)).length, N);
  second.ws.close();
});
