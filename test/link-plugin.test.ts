/**
 * Channels and listeners as a plugin uses them (issue 10 §4, §5): a plugin from a pluginDirs folder,
 * written against plugins/sdk alone, on a real controller and two real agent processes. Broadcasts
 * of binary payloads reach each agent once and come back byte for byte; the agent that listens maps
 * uWS and the one that does not never does; a config change restarts the plugin and its old ports
 * are refused, open connections included; a busy port fails the start with the reason, and the
 * runner's retry brings it up once the port is free, leaving no listener behind in between.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { freePort, ROOT, TestAgent, TestController, tempDir, until } from './helpers/cluster.ts';

const SDK = join(ROOT, 'plugins/sdk/index.ts');

const files: Record<string, string> = {
  'spec.ts': `
import { defineSpec, z } from '${SDK}';
const addr = z.object({ host: z.string(), port: z.number().int() });
export const spec = defineSpec({
  name: 'zz-chan',
  // Listeners per node name: one config for the cluster, each agent picks its own entry.
  config: z.object({ listen: z.record(z.string(), z.object({ tcp: addr, http: addr })).default({}) }),
  messages: {
    toAgent: { blob: z.object({ seq: z.number(), body: z.instanceof(Buffer) }) },
    toController: { back: z.object({ seq: z.number(), body: z.instanceof(Buffer) }) },
  },
});
`,
  'index.ts': `
import { definePlugin } from '${SDK}';
import { spec } from './spec.ts';
export default definePlugin(spec, { agent: () => import('./agent.ts'), controller: () => import('./controller.ts') });
`,
  'agent.ts': `
import { defineAgent } from '${SDK}';
import { spec } from './spec.ts';
export default defineAgent(spec, (ctx) => ({
  async start() {
    const mine = ctx.config.listen[ctx.node.name];
    if (!mine) return;
    // HTTP first: when the TCP bind then fails, the runner must close this one too.
    await ctx.listen.http(mine.http, (app) => {
      app.get('/hello', (_req, res) => void res.send('http-hi'));
      app.ws('/ws', {}, (ws) => ws.on('message', (m) => void ws.send(m)));
    });
    await ctx.listen.tcp(mine.tcp, (s) => void s.write('tcp-hi'));
  },
  onMessage: { blob: (m) => void ctx.send('back', m) },
}));
`,
  'controller.ts': `
import { randomBytes } from 'node:crypto';
import { defineController, restError } from '${SDK}';
import { spec } from './spec.ts';
export default defineController(spec, (ctx) => {
  const sent = new Map<number, Buffer>();
  const got: Record<string, Array<{ seq: number; same: boolean }>> = {};
  return {
    start() {
      ctx.routes.mount([
        { method: 'GET', path: '/api/v1/zz-chan/state', auth: 'admin', error: restError, handler: () => ({ json: { got } }) },
        {
          method: 'POST', path: '/api/v1/zz-chan/blast', auth: 'admin', error: restError,
          handler: (req) => {
            let took = 0;
            for (let i = 0; i < Number(req.fields.count); i++) {
              const body = randomBytes(Number(req.fields.size));
              sent.set(sent.size, body);
              took += ctx.broadcast('all', 'blob', { seq: sent.size - 1, body });
            }
            return { json: { took } };
          },
        },
      ]);
    },
    onMessage: { back: (node, m) => void (got[node] ??= []).push({ seq: m.seq, same: sent.get(m.seq)?.equals(m.body) === true }) },
  };
});
`,
};

const mapsUws = (pid: number) => /uws_linux_[^/\s]*\.node/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));

function tcpGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString());
    });
    s.once('error', (err: NodeJS.ErrnoException) => reject(err));
  });
}
const refused = (port: number) => tcpGreeting(port).then(() => false, (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');

async function openWs(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

test('a plugin broadcasts binary messages, listens on its own ports, and gives them back on stop', async () => {
  const dir = await tempDir('outpost-plugin-chan-');
  await mkdir(join(dir, 'zz-chan'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'zz-chan', name), text);
  const [t1, h1, t2, h2, h3] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const listen = (tcp: number, http: number) => ({ listen: { listener: { tcp: { host: '127.0.0.1', port: tcp }, http: { host: '127.0.0.1', port: http } } } });
  const c = await TestController.start({ config: { pluginDirs: [dir], plugins: { 'zz-chan': listen(t1, h1) } } });
  const quiet = await TestAgent.start(c, { name: 'quiet', plugins: { 'zz-chan': {} }, config: { pluginDirs: [dir] } });
  // Configs in files stay local to each host; a config set through the REST API is pushed to every agent.
  const listener = await TestAgent.start(c, { name: 'listener', plugins: { 'zz-chan': listen(t1, h1) }, config: { pluginDirs: [dir] } });
  const status = async (a: TestAgent) => (await a.local('GET', '/v1/monitor')).body.plugins.find((p: { name: string }) => p.name === 'zz-chan');
  try {
    await until('the listener up', async () => (await tcpGreeting(t1)) === 'tcp-hi', 20_000);
    await until('both links carry messages', async () => (await c.api('POST', '/api/v1/zz-chan/blast', { count: 0, size: 0 })).status === 200 && (await c.api('GET', '/api/v1/nodes')).body.nodes.every((n: { connected: boolean }) => n.connected));

    // Binary broadcasts: each agent gets each message once, and its bytes come back unchanged.
    assert.deepEqual((await c.api('POST', '/api/v1/zz-chan/blast', { count: 20, size: 100_000 })).body, { took: 40 });
    await until('40 echoes', async () => Object.values((await c.api('GET', '/api/v1/zz-chan/state')).body.got).flat().length === 40);
    const got = (await c.api('GET', '/api/v1/zz-chan/state')).body.got as Record<string, Array<{ seq: number; same: boolean }>>;
    for (const a of [quiet, listener]) {
      assert.deepEqual(got[a.nodeId].map((g) => g.seq), Array.from({ length: 20 }, (_, i) => i), `${a.nodeId} got each message once, in order`);
      assert.ok(got[a.nodeId].every((g) => g.same), 'bytes unchanged');
    }

    // Only the agent whose plugin listens over HTTP maps uWS.
    assert.equal(mapsUws(quiet.proc.child.pid!), false);
    assert.equal(mapsUws(listener.proc.child.pid!), true);
    assert.equal(await (await fetch(`http://127.0.0.1:${h1}/hello`)).text(), 'http-hi');
    const ws = await openWs(h1);
    const wsClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    // Reading (flowing), so the end of the connection is seen.
    const held: Socket = connect(t1, '127.0.0.1').resume();
    const heldClosed = new Promise<void>((resolve) => held.once('close', () => resolve()));

    // A new config restarts the plugin on other ports: the old ones are refused, their connections closed.
    assert.equal((await c.api('PUT', '/api/v1/plugins/zz-chan/config', listen(t2, h2))).status, 200);
    await until('the new ports', async () => (await tcpGreeting(t2).catch(() => '')) === 'tcp-hi', 20_000);
    await wsClosed;
    await heldClosed;
    assert.equal(await refused(t1), true);
    assert.equal(await refused(h1), true);
    assert.equal(await (await fetch(`http://127.0.0.1:${h2}/hello`)).text(), 'http-hi');

    // A busy TCP port fails the start with the reason; the HTTP listener it opened first is closed again.
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(t1, '127.0.0.1', r));
    assert.equal((await c.api('PUT', '/api/v1/plugins/zz-chan/config', listen(t1, h3))).status, 200);
    await until('the start failed', async () => (await status(listener))?.state === 'failed', 20_000);
    assert.equal((await status(listener)).error, `zz-chan: cannot listen on 127.0.0.1:${t1}: address already in use`);
    assert.equal(await refused(h3), true, 'nothing left listening after a failed start');
    assert.equal(await refused(t2), true);
    // The runner retries with backoff: once the port is free the plugin comes up on it.
    await new Promise((r) => blocker.close(r));
    await until('retried and running', async () => (await status(listener))?.state === 'running' && (await tcpGreeting(t1).catch(() => '')) === 'tcp-hi', 60_000, 250);
    assert.equal(await (await fetch(`http://127.0.0.1:${h3}/hello`)).text(), 'http-hi');
  } finally {
    await quiet.stop();
    await listener.stop();
    await c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
