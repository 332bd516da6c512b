/**
 * Issue 9 C12 on a disk that really fills up: controller and agent each keep their data dir on a small
 * tmpfs, which a filler file takes to ENOSPC and then gives back. Controller: 507 naming the store,
 * /readyz 503, a metric; agent: reports refused, /healthz and /v1/monitor say so, a metric. Once space
 * returns both write again, nothing acknowledged is lost and nothing torn is left on disk.
 * Needs root (mount); fails, never skips, without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestAgent, TestController, until } from '../helpers/cluster.ts';
import { Receiver } from '../helpers/receiver.ts';
import { parsePrometheus, valueOf } from '../helpers/prom.ts';

const SECRET = 'e2e-disk-full-secret-0123';

async function smallDisk(dir: string, size: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'outpost-e2e-full', dir]);
}

/** Writes a file until the volume refuses (ENOSPC); returns its path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const fh = await open(path, 'w');
  const chunk = Buffer.alloc(4096, 0x61);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    await fh.close();
  }
  return path;
}

test('a data dir that fills up and frees again: controller answers 507 and is not ready, agent refuses reports; both resume, nothing acknowledged lost', async (t) => {
  assert.equal(process.getuid?.(), 0, 'run as root (test/e2e/run.sh): the test mounts tmpfs volumes');
  const base = await mkdtemp(join(tmpdir(), 'outpost-e2e-full-'));
  const ctlDisk = join(base, 'controller');
  const agentDisk = join(base, 'agent');
  await smallDisk(ctlDisk, '4m');
  await smallDisk(agentDisk, '2m');
  const c = await TestController.start({ dataDir: join(ctlDisk, 'data'), config: { webhooks: { baseDelayMs: 50, maxDelayMs: 200 } } });
  const rx = await Receiver.start({ secret: SECRET });
  let a: TestAgent | undefined;
  try {
    assert.equal((await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'], secret: SECRET })).status, 201);
    a = await TestAgent.start(c, { name: 'full-agent', plugins: { 'server-stats': { interval: 1, diskInterval: 5 } }, config: { dataDir: join(agentDisk, 'data') } });
    const agent = a;
    const history = async () => (await c.api('GET', `/api/v1/nodes/${agent.nodeId}/stats`)).body?.history?.length ?? 0;
    await until('first samples applied', async () => (await history()) >= 2);

    const acked: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await c.api('POST', '/api/v1/events/test', { message: `before-${i}` });
      assert.equal(r.status, 202, r.text);
      acked.push(`before-${i}`);
    }

    // Both disks full.
    const ctlFiller = await fill(ctlDisk);
    const agentFiller = await fill(agentDisk);
    // Small appends may still fit in the last page of a journal: go on until the disk refuses.
    let refused;
    for (let i = 0; !refused && i < 200; i++) {
      const r = await c.api('POST', '/api/v1/events/test', { message: `while-full-${i}` });
      if (r.status === 202) acked.push(`while-full-${i}`);
      else refused = { ...r, message: `while-full-${i}` };
    }
    assert.ok(refused, 'the controller refused an event once its disk was full');
    assert.equal(refused.status, 507, refused.text);
    // Either the event log refused the event, or it holds it and the outbox refused its deliveries.
    const notRecorded = /^storage full: could not write events: ENOSPC \(no space left on device\); the request was not recorded/.test(refused.body.error.message);
    if (!notRecorded) {
      assert.match(refused.body.error.message, /^storage full: could not write webhook-queue: ENOSPC \(no space left on device\); event ev_[0-9a-f]+ is recorded/);
      acked.push(refused.message);
    }
    assert.equal((await c.api('POST', '/api/v1/events/test', { message: 'still-full' })).status, 507, 'still full, still refused');
    const ready = await c.api('GET', '/readyz', undefined, '');
    assert.equal(ready.status, 503);
    assert.ok(ready.body.storage.length > 0 && ready.body.storage.every((p: { code: string }) => p.code === 'ENOSPC'), ready.text);
    const ctlMetrics = parsePrometheus((await c.api('GET', '/metrics', undefined, '')).text);
    assert.ok((valueOf(ctlMetrics, 'outpost_store_write_errors_total', { code: 'ENOSPC' }) ?? 0) >= 1);

    const health = await until('agent reports the full disk', async () => {
      const h = await agent.local('GET', '/healthz');
      return h.body?.status === 'degraded' && h;
    });
    assert.equal(health.status, 200, 'alive all the same');
    assert.equal(health.body.storage[0].store, 'outbox');
    assert.equal(health.body.storage[0].code, 'ENOSPC');
    assert.equal((await agent.local('GET', '/v1/monitor')).body.storage[0].code, 'ENOSPC');
    const agentMetrics = parsePrometheus((await agent.local('GET', '/metrics')).text);
    assert.ok((valueOf(agentMetrics, 'outpost_agent_store_write_errors_total', { code: 'ENOSPC' }) ?? 0) >= 1);
    const appliedWhileFull = await history();

    // Space returns.
    await rm(ctlFiller);
    await rm(agentFiller);
    const after = await c.api('POST', '/api/v1/events/test', { message: 'after' });
    assert.equal(after.status, 202, after.text);
    acked.push('after');
    await until('controller ready again', async () => (await c.api('GET', '/readyz', undefined, '')).status === 200);
    await until('agent healthy again', async () => (await agent.local('GET', '/healthz')).body?.status === 'ok');
    await until('agent reports reach the controller again', async () => (await history()) >= appliedWhileFull + 2, 20_000);
    await rx.waitFor('every acknowledged event delivered', (r) => acked.every((m) => r.accepted().some((q) => q.json?.data?.message === m)));
    t.diagnostic(`${appliedWhileFull} samples applied before the agent's disk filled, ${(await history()) - appliedWhileFull} after it freed`);

    // Restarted on the same disks: every log loads whole (nothing torn, nothing skipped).
    await c.restart('SIGKILL');
    await agent.restart('SIGKILL');
    assert.doesNotMatch(c.proc.output() + agent.proc.output(), /torn record|unreadable record/);
    const events = (await c.api('GET', '/api/v1/events?limit=100')).body.events.map((e: { data: { message?: string } }) => e.data.message);
    for (const m of acked) assert.ok(events.includes(m), `event ${m} listed after the restart`);
    if (notRecorded) assert.ok(!events.includes(refused.message), 'the refused event was not recorded');
  } finally {
    await a?.kill();
    await rx.close();
    // stop() also removes the data dir's parent, the mount point: busy until unmounted, so that part fails.
    await c.stop().catch(() => undefined);
    for (const d of [ctlDisk, agentDisk]) execFileSync('umount', ['-l', d]);
    await a?.stop();
    await rm(base, { recursive: true, force: true });
  }
});
