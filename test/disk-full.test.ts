/**
 * Issue 9 C12, without root: the controller runs under a file-size limit (RLIMIT_FSIZE, set and lifted
 * on the live process with util-linux `prlimit`), so its logs' appends hit EFBIG the way they would hit
 * ENOSPC on a full disk: cut short, then refused. Requests answer 507 (never 4xx), /readyz and
 * /metrics say why, nothing acknowledged is lost, and writes resume once the limit is lifted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestController, until } from './helpers/cluster.ts';
import { Receiver } from './helpers/receiver.ts';
import { parsePrometheus, valueOf } from './helpers/prom.ts';

const SECRET = 'disk-full-secret-0123456789';
/** Bytes a file may grow to while "full": a few dozen events past what start-up writes. */
const LIMIT = 24 * 1024;

function prlimit(args: string[]): void {
  try {
    execFileSync('prlimit', args, { stdio: 'pipe' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('this test needs prlimit (Debian package util-linux) to set a file-size limit on the controller');
    throw new Error(`prlimit ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

test('file-size limit reached: 507 naming the store, /readyz 503, a metric; once lifted, writes resume and every acknowledged event is delivered', async (t) => {
  // prlimit execs node, so the controller's pid is the child's.
  const c = await TestController.start({ wrapper: ['prlimit', '--fsize=unlimited:unlimited', '--'], config: { webhooks: { baseDelayMs: 50, maxDelayMs: 200 } } });
  const rx = await Receiver.start({ secret: SECRET });
  try {
    const sub = await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'], secret: SECRET });
    assert.equal(sub.status, 201, sub.text);
    const pid = c.proc.child.pid!;
    prlimit(['--pid', String(pid), `--fsize=${LIMIT}:unlimited`]);

    const acked: string[] = [];
    const refused: Array<{ status: number; message: string }> = [];
    for (let i = 0; refused.length < 3 && i < 400; i++) {
      const message = `event-${i}-${'x'.repeat(120)}`;
      const r = await c.api('POST', '/api/v1/events/test', { message });
      if (r.status === 202) acked.push(message);
      else refused.push({ status: r.status, message: r.body?.error?.message ?? r.text });
    }
    t.diagnostic(`${acked.length} events acknowledged before the limit; refusals: ${JSON.stringify(refused[0])}`);
    assert.equal(refused.length, 3, 'the limit was reached');
    for (const r of refused) {
      assert.equal(r.status, 507, JSON.stringify(r));
      // Either the event log refused the event, or it holds it and the outbox refused its deliveries.
      assert.match(r.message, /^storage full: could not write (events: EFBIG \(file size limit reached\); the request was not recorded, retry once space is freed|webhook-queue: EFBIG \(file size limit reached\); event ev_[0-9a-f]+ is recorded and its deliveries will be queued once space is freed)$/);
    }

    const ready = await c.api('GET', '/readyz', undefined, '');
    assert.equal(ready.status, 503, ready.text);
    assert.equal(ready.body.status, 'degraded');
    assert.ok(ready.body.storage.length >= 1 && ready.body.storage.every((p: { code: string }) => p.code === 'EFBIG'), ready.text);
    const metrics = parsePrometheus((await c.api('GET', '/metrics', undefined, '')).text);
    assert.ok((valueOf(metrics, 'outpost_store_write_errors_total', { code: 'EFBIG' }) ?? 0) >= 3);
    // Both read one health record, a moment apart: a store whose write succeeds in between (a
    // compaction made room under the limit) can leave them one apart; they agree once read together.
    await until('outpost_store_failing agrees with /readyz', async () => {
      const failing = valueOf(parsePrometheus((await c.api('GET', '/metrics', undefined, '')).text), 'outpost_store_failing', {});
      const now = await c.api('GET', '/readyz', undefined, '');
      return failing === (now.body.storage?.length ?? 0);
    });
    // Reading still works, and the process is alive.
    assert.equal((await c.api('GET', '/healthz', undefined, '')).status, 200);
    assert.equal((await c.api('GET', '/api/v1/events?limit=5')).status, 200);

    // Space returns.
    prlimit(['--pid', String(pid), '--fsize=unlimited:unlimited']);
    const after = await c.api('POST', '/api/v1/events/test', { message: 'after-space-returned' });
    assert.equal(after.status, 202, after.text);
    acked.push('after-space-returned');
    await until('ready again', async () => (await c.api('GET', '/readyz', undefined, '')).status === 200);

    const delivered = () => new Set(rx.accepted().map((q) => q.json?.data?.message));
    await rx.waitFor('every acknowledged event delivered', () => acked.every((m) => delivered().has(m)), 30_000);

    // Nothing torn on disk: a crash now reloads every log without cutting or skipping anything.
    await c.restart('SIGKILL');
    assert.doesNotMatch(c.proc.output(), /torn record|unreadable record/);
    const events = (await c.api('GET', '/api/v1/events?limit=1000')).body.events.map((e: { data: { message: string } }) => e.data.message);
    for (const m of acked) assert.ok(events.includes(m), `event "${m.slice(0, 12)}" still listed after the restart`);
  } finally {
    await rx.close();
    await c.stop();
  }
});
