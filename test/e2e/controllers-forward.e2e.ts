/**
 * Three controllers on one real PostgreSQL 15, agents linked to different ones: through controller A,
 * a command for a node linked to B answers as it would on B (result, agent's refusal, timeout, plugin
 * not running — same status and message); best-effort messages (binary) reach nodes linked to B and C;
 * a plugin's ctx.peers.call/broadcast reach its onPeer on B and C (Buffers intact); A lists B's node
 * connected, with B's id and its plugin states; once that agent is gone a command for it answers 503
 * "down"; calls to the internal endpoint that are unsigned, forged or stale are refused with 401.
 * Prints the latency of forwarded commands (1,000 sequential, timed inside the plugin) next to local ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestAgent, TestController, stopProc, until } from '../helpers/cluster.ts';
import { PEER_PLUGIN, writePeerPlugin } from '../helpers/peer-plugin.ts';
import { controllersOn, postgresForFile } from './lib/postgres.ts';
import { statusOf as status } from './lib/lease.ts';
import { signPeerCall } from '../../runtime/cluster/peer-sign.ts';
import { encodePeerBody } from '../../runtime/cluster/peer-codec.ts';

const pg = postgresForFile();


test('controllers forward commands, messages and plugin peer calls to the controller holding a node\'s link', async () => {
  const url = await pg.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const dir = await writePeerPlugin();
  const adminToken = `opa_test_forward_${Date.now().toString(36)}`;
  // Presence expires after three heartbeat intervals: 1 s beats keep a controller slowed by a loaded
  // machine from dropping out of the others' view (and its nodes with it) between two renewals.
  const config = { pluginDirs: [dir], plugins: { 'server-stats': {}, [PEER_PLUGIN]: {} }, commandTimeoutMs: 3000, heartbeat: { intervalMs: 1000, downAfter: 3, upAfter: 2 } };
  const start = controllersOn(pg, url, { config, adminToken });
  const a = await start();
  const [b, c] = [await start(), await start()];
  const agentOpts = (name: string) => ({ name, plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, [PEER_PLUGIN]: {} }, config: { pluginDirs: [dir] } });
  const agents: TestAgent[] = [];
  try {
    const [ida, idb, idc] = await Promise.all([a, b, c].map(async (x) => (await status(x)).controller.id as string));
    // One agent linked to each controller (each joins and links through that controller's own URL).
    const onA = await TestAgent.start(a, agentOpts('on-a'));
    const onB = await TestAgent.start(b, agentOpts('on-b'));
    const onC = await TestAgent.start(c, agentOpts('on-c'));
    agents.push(onA, onB, onC);

    // ---- A lists B's and C's nodes connected, with the controller holding them and their plugin states ----
    const nodeOnA = async (id: string) => (await a.api('GET', `/api/v1/nodes/${id}`)).body;
    for (const [agent, holder] of [[onB, idb], [onC, idc], [onA, ida]] as const) {
      await until(`A sees ${agent.nodeId} linked to ${holder} with ${PEER_PLUGIN} running`, async () => {
        const n = await nodeOnA(agent.nodeId);
        const n2 = n.node ?? n;
        return n2.connected === true && n2.controller === holder && n2.plugins?.some((p: any) => p.name === PEER_PLUGIN && p.state === 'running') && n2.capabilities !== undefined;
      }, 20_000);
    }

    // ---- commands through A: as on the holder ----
    const one = (x: TestController, body: Record<string, unknown>) => x.api('POST', '/api/v1/zz-fwd/one', body).then((r) => r.body);
    // What A knew when an answer surprised: its presence view and its node list.
    const seenByA = async () => JSON.stringify({ status: (await status(a)).controllers, nodes: (await a.api('GET', '/api/v1/nodes')).body.nodes.map((n: any) => [n.name, n.connected, n.controller]) });
    assert.deepEqual(await one(a, { node: 'on-b', text: 'via A' }), { ok: true, result: { text: 'via A', node: 'on-b' } }, await seenByA());
    assert.deepEqual(await one(a, { node: onC.nodeId, text: 'to C' }), { ok: true, result: { text: 'to C', node: 'on-c' } }, await seenByA());
    // The agent's refusal and a timeout: the same message through A as through the controller holding the link.
    for (const body of [{ fail: true }, { delayMs: 800, timeoutMs: 300 }]) {
      const here = await one(b, { node: 'on-b', ...body });
      const there = await one(a, { node: 'on-b', ...body });
      assert.equal(here.ok, false, JSON.stringify(here));
      // A timeout is told by whichever comes first, the agent's deadline or the controller's timer
      // (a race on one controller too): either wording is the same answer.
      const timeoutWording = (x: { error?: string }) => ({ ...x, error: x.error?.replace(/^node \S+ did not answer (\S+) within \d+ ms$/, 'command $1 exceeded its deadline') });
      assert.deepEqual(timeoutWording(there), timeoutWording(here), `forwarded ${JSON.stringify(body)} answers as locally`);
    }
    // A plugin not running on the node: refused from presence's plugin states, as on B.
    const missingHere = await one(b, { node: 'on-b', plugin: 'app-store' });
    assert.deepEqual(await one(a, { node: 'on-b', plugin: 'app-store' }), missingHere);
    assert.equal(missingHere.status, 503);

    // ---- best-effort messages (binary) through A to nodes linked to A, B and C ----
    const sent = await a.api('POST', '/api/v1/zz-fwd/send', { nodes: [onA.nodeId, onB.nodeId, onC.nodeId], count: 20, size: 50_000 });
    assert.deepEqual(sent.body, { took: 60 });
    const pongs = async (x: TestController, agent: TestAgent, n: number) =>
      until(`${n} pongs of ${agent.nodeId} on its controller`, async () => {
        const got = (await x.api('GET', '/api/v1/zz-fwd/state')).body.got[agent.nodeId] ?? [];
        return got.length === n && got.every((g: any) => g.same) ? got : undefined;
      }, 15_000);
    for (const [x, agent] of [[a, onA], [b, onB], [c, onC]] as const) {
      const got = await pongs(x, agent, 20);
      assert.deepEqual(got.map((g: any) => g.seq), Array.from({ length: 20 }, (_, i) => i), 'in order');
    }
    // Once the links have drained (a burst can pass a link's high-water mark, here as anywhere).
    assert.deepEqual((await a.api('POST', '/api/v1/zz-fwd/send', { nodes: onB.nodeId, count: 1, size: 10 })).body, { took: 1 }, 'ctx.send to a node linked to B');
    assert.deepEqual((await a.api('POST', '/api/v1/zz-fwd/send', { nodes: 'all', count: 1, size: 10 })).body, { took: 3 }, `broadcast to all counts the nodes linked elsewhere; A saw ${await seenByA()}`);
    await pongs(b, onB, 22);
    await pongs(c, onC, 21);
    await pongs(a, onA, 21);

    // ---- ctx.peers from A: list, call, broadcast; Buffers both ways; errors name the controller ----
    const peers = (await a.api('POST', '/api/v1/zz-fwd/peers', { to: idb, text: 'héllo' })).body;
    assert.equal(peers.self, ida);
    assert.deepEqual(peers.list.map((p: any) => p.id).sort(), [idb, idc].sort());
    assert.deepEqual(peers.call, { ok: true, result: { self: idb, from: ida, text: 'héllo', bytes: 'héllo!', buffer: true } });
    assert.deepEqual(
      peers.broadcast.sort((x: any, y: any) => x.controller.localeCompare(y.controller)),
      [idb, idc].sort().map((id) => ({ controller: id, ok: true, result: { self: id, from: ida, text: 'héllo', bytes: 'héllo!', buffer: true } })),
    );
    const failing = (await a.api('POST', '/api/v1/zz-fwd/peers', { to: idb, method: 'fail' })).body;
    assert.equal(failing.call.ok, false);
    assert.match(failing.call.error, new RegExp(`controller ${idb}.*no, on purpose`));
    assert.ok(failing.broadcast.every((x: any) => x.ok === false && x.error.includes('no, on purpose')), JSON.stringify(failing.broadcast));
    const nobody = (await a.api('POST', '/api/v1/zz-fwd/peers', { to: 'ctl_nobody' })).body;
    assert.match(nobody.call.error, /controller ctl_nobody is not a live peer/);

    // ---- the internal endpoint refuses unsigned, forged and stale calls ----
    const internal = `${b.url}/internal/v1/peer`;
    const op = encodePeerBody({ op: 'command', node: onB.nodeId, plugin: PEER_PLUGIN, action: 'echo', args: { text: 'forged' }, timeoutMs: 1000 }, 'test');
    const post = (headers: Record<string, string>, body: Buffer = op) => fetch(internal, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body });
    const unsigned = await post({});
    assert.equal(unsigned.status, 401);
    const envelope = (await unsigned.json()) as { error: { status: number } };
    assert.equal(envelope.error.status, 401);
    const [row] = await pg.sql<{ data: string }>(database, "SELECT data FROM outpost_store_rows WHERE store LIKE '%cluster' AND field = 'peerSecret'");
    assert.ok(row, 'the cluster secret is in the shared store');
    assert.ok(!JSON.stringify(envelope).includes(JSON.parse(row.data)), 'no secret in the refusal');
    const secret = Buffer.from(JSON.parse(row.data), 'base64url');
    assert.equal((await post(signPeerCall(Buffer.from('not the secret'), ida, op))).status, 401, 'forged');
    assert.equal((await post(signPeerCall(secret, ida, op, Date.now() - 120_000))).status, 401, 'stale');
    assert.equal((await post(signPeerCall(secret, ida, op), Buffer.concat([op, Buffer.from(' ')]))).status, 401, 'body changed after signing');
    assert.equal((await post(signPeerCall(secret, ida, op))).status, 200, 'the same call signed with the cluster secret is taken');

    // ---- forwarded command latency (1,000 sequential, timed inside the plugin) ----
    const bench = async (x: TestController, node: string) => (await x.api('POST', '/api/v1/zz-fwd/bench', { node, n: 1000 })).body;
    await bench(a, 'on-b'); // warm-up: connections open, code paths compiled
    const local = await bench(a, 'on-a');
    const forwarded = await bench(a, 'on-b');
    console.log(`forwarded command (A → B → agent) over ${forwarded.n}: p50 ${forwarded.p50.toFixed(2)} ms, p99 ${forwarded.p99.toFixed(2)} ms, max ${forwarded.max.toFixed(2)} ms; local (A → agent): p50 ${local.p50.toFixed(2)} ms, p99 ${local.p99.toFixed(2)} ms`);
    assert.equal(forwarded.n, 1000, `every command answered: ${forwarded.failed} failed (${forwarded.error})`);

    // ---- B's agent gone: a command for it through A answers 503 "down" ----
    await stopProc(onB.proc, 'SIGKILL');
    await until('A sees on-b not connected', async () => {
      const n = await nodeOnA(onB.nodeId);
      return (n.node ?? n).connected === false;
    }, 20_000);
    const down = await one(a, { node: 'on-b' });
    assert.deepEqual(down, { ok: false, error: 'node on-b is down: its agent is not connected', status: 503 });

    // Only loopback: every controller announced a loopback URL.
    for (const x of (await status(a)).controllers) assert.match(x.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  } finally {
    for (const ag of agents) await ag.stop().catch(() => undefined);
    for (const x of [a, b, c]) await x.stop().catch(() => undefined);
  }
});
