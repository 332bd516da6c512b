/**
 * Issue 9 C11: an event the controller has recorded, or acknowledged to a client, reaches webhook
 * subscribers even when the controller is SIGKILLed right after. The kill lands the moment the change
 * is visible from outside: nodes.json shows the node down, or the 201 / 202 has arrived.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestController, stopProc, until } from './helpers/cluster.ts';
import { Receiver, type Received } from './helpers/receiver.ts';
import { openRawLink } from './helpers/raw-link.ts';

const SECRET = 'crash-test-secret-0123456789';
const ROUNDS = 10;

let c: TestController;
let rx: Receiver;
before(async () => {
  c = await TestController.start({ config: { webhooks: { baseDelayMs: 50, maxDelayMs: 200 } } });
  rx = await Receiver.start({ secret: SECRET });
  const sub = await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['node.enrolled', 'node.down', 'test.ping'], secret: SECRET });
  assert.equal(sub.status, 201, sub.text);
});
after(async () => {
  await rx?.close();
  await c?.stop();
});

async function crashAndRestart(): Promise<void> {
  await stopProc(c.proc, 'SIGKILL');
  await c.restart();
}

const forNode = (event: string, nodeId: string) => (q: Received) => q.event === event && q.json?.data?.node?.id === nodeId;

/** Every event arrived under a single delivery id: a replay after the crash did not mint a second one. */
function assertOneId(got: Received[], what: string): void {
  assert.equal(new Set(got.map((q) => q.id)).size, 1, `${what}: ${got.length} deliveries under ids ${[...new Set(got.map((q) => q.id))].join(', ')}`);
  assert.ok(got.every((q) => q.signatureOk), `${what}: signed`);
}

async function enroll(name: string): Promise<{ nodeId: string; credential: string }> {
  const r = await c.api('POST', '/api/v1/enroll', { token: await c.joinToken(), name }, '');
  assert.equal(r.status, 201, r.text);
  return r.body;
}

/** The persisted state of a node, as the controller last wrote it. */
async function persistedState(nodeId: string): Promise<string | undefined> {
  try {
    return JSON.parse(await readFile(join(c.dataDir, 'nodes.json'), 'utf8')).nodes[nodeId]?.state;
  } catch {
    return undefined; // read between truncate and write of a store that is not renamed into place
  }
}

test(`node.down recorded, then SIGKILL at once: announced after the restart (${ROUNDS} rounds, no miss)`, async (t) => {
  let missed = 0;
  for (let i = 1; i <= ROUNDS; i++) {
    const { nodeId, credential } = await enroll(`down-${i}`);
    const link = await openRawLink(c.url, credential);
    await link.hello(nodeId);
    let seq = 0;
    const beat = setInterval(() => link.send({ t: 'hb', seq: ++seq, ts: Date.now(), summary: {} }), 50);
    while ((await persistedState(nodeId)) !== 'up') await new Promise((r) => setTimeout(r, 20));
    clearInterval(beat);
    link.ws.terminate();
    // The watchdog records the node down; the controller dies the moment that is on disk.
    while ((await persistedState(nodeId)) !== 'down') await new Promise((r) => setImmediate(r));
    await crashAndRestart();
    try {
      const got = await rx.waitFor(`node.down of down-${i}`, (r) => {
        const d = r.accepted().filter(forNode('node.down', nodeId));
        return d.length > 0 && d;
      });
      assertOneId(got, `node.down of down-${i}`);
      assert.equal(got[0].json.data.node.state, 'down');
      assert.equal(got[0].json.data.previous, 'up');
    } catch (err) {
      missed += 1;
      t.diagnostic(`round ${i}: ${(err as Error).message}`);
    }
  }
  assert.equal(missed, 0, `node.down missed in ${missed} of ${ROUNDS} rounds`);
});

test(`node.enrolled and test.ping acknowledged, then SIGKILL at once: delivered after the restart (${ROUNDS} rounds, no miss)`, async (t) => {
  let missed = 0;
  for (let i = 1; i <= ROUNDS; i++) {
    const token = await c.joinToken();
    const [enrolled, ping] = await Promise.all([
      c.api('POST', '/api/v1/enroll', { token, name: `enrolled-${i}` }, ''),
      c.api('POST', '/api/v1/events/test', { message: `ping-${i}` }),
    ]);
    await crashAndRestart();
    assert.equal(enrolled.status, 201, enrolled.text);
    assert.equal(ping.status, 202, ping.text);
    try {
      const got = await rx.waitFor(`node.enrolled of enrolled-${i}`, (r) => {
        const d = r.accepted().filter(forNode('node.enrolled', enrolled.body.nodeId));
        return d.length > 0 && d;
      });
      assertOneId(got, `node.enrolled of enrolled-${i}`);
      const pinged = await rx.waitFor(`test.ping ${i}`, (r) => {
        const d = r.accepted().filter((q) => q.event === 'test.ping' && q.json?.data?.message === `ping-${i}`);
        return d.length > 0 && d;
      });
      assertOneId(pinged, `test.ping ${i}`);
    } catch (err) {
      missed += 1;
      t.diagnostic(`round ${i}: ${(err as Error).message}`);
    }
  }
  assert.equal(missed, 0, `missed in ${missed} of ${ROUNDS} rounds`);
});

test('SIGKILL in the middle of a burst of deliveries: every acknowledged event arrives, each id once but the attempt in flight', async (t) => {
  const BURST = 1000;
  /** Deliveries before the kill an unwritten ack may be among: one group-commit turn's worth at this rate, with margin. */
  const RECENT = 50;
  const isBurst = (q: Received) => q.event === 'test.ping' && String(q.json?.data?.message ?? '').startsWith('burst-');
  const acked: string[] = [];
  let next = 0;
  let killed = false;
  // Eight clients post pings as fast as the controller answers; the kill lands once deliveries flow.
  const client = async () => {
    while (!killed && next < BURST) {
      const message = `burst-${next++}`;
      try {
        const r = await c.api('POST', '/api/v1/events/test', { message });
        if (r.status === 202) acked.push(message);
      } catch {
        return; // the controller died under this request: not acknowledged, no promise made
      }
    }
  };
  const clients = Array.from({ length: 8 }, client);
  await rx.waitFor('deliveries of the burst under way', (r) => r.accepted().filter(isBurst).length >= 100);
  killed = true;
  await stopProc(c.proc, 'SIGKILL');
  await Promise.all(clients);
  const beforeKill = rx.accepted().filter(isBurst).map((q) => q.id);
  const deliveredBeforeKill = beforeKill.length;
  await c.restart();
  assert.ok(acked.length >= 100, `only ${acked.length} pings acknowledged before the kill`);

  const got = await rx.waitFor(`all ${acked.length} acknowledged pings delivered`, (r) => {
    const arrived = new Set(r.accepted().filter(isBurst).map((q) => q.json.data.message));
    return acked.every((m) => arrived.has(m)) && r.accepted().filter(isBurst);
  }, 60_000);
  const idsOf = new Map<string, Set<string>>();
  const timesOf = new Map<string, number>();
  for (const q of got) {
    const m = q.json.data.message as string;
    idsOf.set(m, (idsOf.get(m) ?? new Set()).add(q.id));
    timesOf.set(q.id, (timesOf.get(q.id) ?? 0) + 1);
    assert.ok(q.signatureOk, `${m}: signed`);
  }
  const twoIds = [...idsOf].filter(([, ids]) => ids.size > 1).map(([m]) => m);
  assert.deepEqual(twoIds, [], 'an event replayed after the crash kept its delivery id');
  // One subscription is one lane with one attempt in flight, and an ack reaches the file in the next
  // group-commit turn (it does not wait for its own write): what is sent again after the kill is the
  // attempt in flight and those acked in the last turn, each twice, all among the last sent before it.
  const repeated = [...timesOf].filter(([, n]) => n > 1);
  const recent = new Set(beforeKill.slice(-RECENT));
  assert.ok(repeated.every(([id, n]) => n === 2 && recent.has(id)), `delivered more than once: ${JSON.stringify(repeated)} (not all among the last ${RECENT} before the kill)`);
  t.diagnostic(`${acked.length} acknowledged, ${deliveredBeforeKill} delivered before the kill, ${got.length} requests in all, ${repeated.length} repeated`);
});

test('events an older release left pending in nodes.json (an array) are announced after an upgrade, once, and leave the file', async () => {
  const { nodeId } = await enroll('legacy-pending');
  await stopProc(c.proc, 'SIGTERM');
  const file = join(c.dataDir, 'nodes.json');
  const doc = JSON.parse(await readFile(file, 'utf8'));
  delete doc.unannounced;
  doc.pending = [{ id: 'ev_legacy00000001', ts: new Date().toISOString(), event: 'node.down', data: { node: { id: nodeId, name: 'legacy-pending' }, previous: 'up' } }];
  await writeFile(file, JSON.stringify(doc));
  await c.restart();
  const got = await rx.waitFor('the legacy pending node.down delivered', (r) => r.accepted().find((q) => q.json?.id === 'ev_legacy00000001'));
  assert.equal(got.event, 'node.down');
  const left = await until('the legacy array emptied', async () => {
    const d = JSON.parse(await readFile(file, 'utf8'));
    return (d.pending ?? []).length === 0 ? d : undefined;
  }, 10_000);
  assert.deepEqual(Object.keys(left.unannounced ?? {}), []);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(rx.accepted().filter((q) => q.json?.id === 'ev_legacy00000001').length, 1, 'announced once');
});
