/**
 * comet in a real browser (Debian's chromium driven by playwright-core): a page served by this test
 * speaks goim's protocol over the browser's own WebSocket to the agent's `/sub` (as goim's
 * examples/javascript/client.js does: op 7 auth, op 8, heartbeats, op-9 messages parsed into inner
 * frames) and receives pushes sent through the controller's goim API; then the dashboard's comet
 * panel sends a test push by clicking, and the page receives that too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { TestAgent, TestController, until } from '../helpers/cluster.ts';

const CHROMIUM = process.env.CHROMIUM || process.env.OUTPOST_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** goim's client, in the browser: nothing here but the DOM and the WebSocket API. */
const CLIENT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>goim client</title></head>
<body>
<p id="state">connecting</p>
<p id="online"></p>
<ol id="messages"></ol>
<script>
  var params = new URLSearchParams(location.search);
  var enc = new TextEncoder(), dec = new TextDecoder();
  function frame(op, seq, body) {
    var b = enc.encode(body || '');
    var buf = new ArrayBuffer(16 + b.length), v = new DataView(buf);
    v.setInt32(0, 16 + b.length); v.setInt16(4, 16); v.setInt16(6, 1); v.setInt32(8, op); v.setInt32(12, seq);
    new Uint8Array(buf, 16).set(b);
    return buf;
  }
  var ws = new WebSocket(params.get('ws'));
  ws.binaryType = 'arraybuffer';
  window.heartbeat = function () { ws.send(frame(2, 1)); };
  ws.onopen = function () {
    ws.send(frame(7, 1, JSON.stringify({ mid: 123, key: params.get('key'), room_id: 'live://1000', platform: 'web', accepts: [1000, 1001, 1002] })));
  };
  ws.onmessage = function (e) {
    var v = new DataView(e.data), op = v.getInt32(8);
    if (op === 8) { document.getElementById('state').textContent = 'authed'; window.heartbeat(); }
    else if (op === 3) document.getElementById('online').textContent = 'online ' + v.getInt32(16);
    else if (op === 9) {
      for (var off = 16; off < e.data.byteLength;) {
        var len = v.getInt32(off), li = document.createElement('li');
        li.textContent = v.getInt32(off + 8) + ':' + dec.decode(new Uint8Array(e.data, off + 16, len - 16));
        document.getElementById('messages').appendChild(li);
        off += len;
      }
    }
  };
  ws.onclose = function (e) { document.getElementById('state').textContent = 'closed ' + e.code; };
</script>
</body></html>`;

async function servePage(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/client')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(CLIENT_PAGE);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/client` };
}

const messages = (page: Page) => page.locator('#messages li').allTextContents();

test('comet in Chromium: a browser WebSocket gets pushes sent through the controller; the panel\'s test push reaches it', async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}: install the Debian package "chromium" (test/e2e/run.sh does)`);
  const c = await TestController.start({ config: { plugins: { comet: { onlineRefreshMs: 200 } } } });
  let agent: TestAgent | undefined;
  let ctx: BrowserContext | undefined;
  const profile = await mkdtemp(join(tmpdir(), 'outpost-chromium-'));
  const page = await servePage();
  const problems: string[] = [];
  try {
    agent = await TestAgent.start(c, { name: 'edge', plugins: { comet: { ws: { port: 0 }, tcp: { port: 0 } } } });
    const goim = async (path: string, body: string) => {
      const r = await fetch(c.url + path, { method: 'POST', headers: { authorization: `Bearer ${c.adminToken}` }, body });
      return r.json();
    };
    const ws = await until('the gateway in nodes/instances', async () => {
      const r = await fetch(`${c.url}/goim/nodes/instances`, { headers: { authorization: `Bearer ${c.adminToken}` } });
      const data = ((await r.json()) as { data?: Array<{ addrs: string[] }> }).data;
      return data?.[0]?.addrs.find((a) => a.startsWith('ws://'));
    }, 30_000);

    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
    const client = ctx.pages()[0] ?? (await ctx.newPage());
    client.on('pageerror', (e) => problems.push(`client page error: ${e.message}`));
    await client.goto(`${page.url}?ws=${encodeURIComponent(ws)}&key=browser-1`);
    await client.locator('#state', { hasText: 'authed' }).waitFor({ timeout: 15_000 });

    // A push right after op 8 finds the connection: it was routed before op 8 was written.
    assert.deepEqual(await goim('/goim/push/keys?operation=1000&keys=browser-1', 'hello browser'), { code: 0, message: '' });
    assert.deepEqual(await goim('/goim/push/room?operation=1001&type=live&room=1000', 'hello room'), { code: 0, message: '' });
    assert.deepEqual(await goim('/goim/push/mids?operation=1002&mids=123', 'hello mid'), { code: 0, message: '' });
    await until('three pushes in the page', async () => (await messages(client)).length === 3);
    // Sorted: a room push waits up to roomBatchMs on the node for company while a mid push goes at once,
    // so the two may arrive in either order (goim batches rooms the same way).
    assert.deepEqual((await messages(client)).sort(), ['1000:hello browser', '1001:hello room', '1002:hello mid']);
    await until('op 3 carries the room count', async () => {
      await client.evaluate('window.heartbeat()');
      return (await client.locator('#online').textContent()) === 'online 1';
    });

    // The dashboard: sign in, the comet panel lists the node's connection, its form pushes to the key.
    const dash = await ctx.newPage();
    dash.on('console', (m) => {
      if (m.type() === 'error') problems.push(`dashboard console: ${m.text()}`);
    });
    dash.on('pageerror', (e) => problems.push(`dashboard page error: ${e.message}`));
    await dash.goto(c.url);
    await dash.getByLabel('Admin token').fill(c.adminToken);
    await Promise.all([dash.waitForNavigation(), dash.getByRole('button', { name: 'Sign in' }).click()]);
    await dash.locator(`#p-comet tr[data-node="${agent.nodeId}"][data-conns="1"]`).waitFor({ timeout: 15_000 });
    assert.match((await dash.locator('#p-comet tr[data-room="live://1000"]').textContent()) ?? '', /live:\/\/1000\s*1/);
    const form = dash.locator('#comet-push');
    await form.getByLabel('To').selectOption('key');
    await form.getByLabel('Key or room').fill('browser-1');
    await form.getByLabel('Message').fill('from the panel');
    await form.getByRole('button', { name: 'Push test message' }).click();
    await until('the panel announced it', async () => /Sent to 1 node\(s\)\./.test((await dash.locator('#action-status').textContent()) ?? ''));
    await until('the panel push in the page', async () => (await messages(client)).includes('1000:from the panel'));
    // And to the room, with another operation.
    await form.getByLabel('To').selectOption('room');
    await form.getByLabel('Key or room').fill('live://1000');
    await form.getByLabel('Operation').fill('1001');
    await form.getByLabel('Message').fill('room from the panel');
    await form.getByRole('button', { name: 'Push test message' }).click();
    await until('the room push in the page', async () => (await messages(client)).includes('1001:room from the panel'));
    assert.equal(await client.locator('#state').textContent(), 'authed', 'still connected');
    assert.deepEqual(problems, []);
  } finally {
    await ctx?.close();
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    page.server.close();
    await agent?.stop();
    await c.stop();
  }
});
