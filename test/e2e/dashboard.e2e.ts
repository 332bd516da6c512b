/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core).
 *
 * 1. Against three agents in network namespaces: sign in, watch all three up, cut one off and see it
 *    turn down without a reload, restore it, survive a controller crash (reconnecting, then asked to
 *    sign in again), sign out. No token may ever show up in a URL, the page source or document.cookie.
 * 2. Every action by clicking, on loopback with a real Docker Engine: create a join token and join a
 *    node with the install line read off the page, delete that node, add a webhook (secret shown
 *    once) and send it a test event, retry a dead delivery, add and stop a prober monitor, install and
 *    uninstall an app from the app-store panel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { assertNoSecret, clickConfirming, expand, launchChromium as launch, refreshed, signIn, SHOTS, status, watchProblems } from './lib/chromium.ts';
import { startNetnsCluster, type NetnsCluster } from './lib/netns-cluster.ts';
import { startReceiver } from './lib/receiver.ts';
import { docker, DOCKER_SOCKET, removeAppLeftovers } from './lib/docker-apps.ts';
import { lockDocker } from '../apps/docker-lock.ts';
import { ROOT, stopProc, TestAgent, TestController, until } from '../helpers/cluster.ts';
import { verifyOutpostSignature } from '../../plugins/sdk/signature.ts';

const exec = promisify(execFile);

const row = (page: Page, name: string, state: string) => page.waitForSelector(`#s-nodes tr[data-node="${name}"][data-state="${state}"]`, { timeout: 30_000 });

test('dashboard in Chromium: sign in, three nodes, one cut off turns down live, comes back, sign out', async (t) => {
  const cluster: NetnsCluster = await startNetnsCluster({ nodes: 3 });
  const profile = await mkdtemp(join(tmpdir(), 'outpost-chromium-'));
  let ctx: BrowserContext | undefined;
  try {
    const token = cluster.controller.adminToken;
    const secrets = [token];
    ctx = await launch(profile);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const urls: string[] = [];
    const problems: string[] = [];
    /** While the controller is deliberately down, failed polls are the point. */
    let crashWindow = false;
    page.on('request', (r) => urls.push(r.url()));
    page.on('console', (m) => {
      // The refused sign-in and the signed-out fetch below answer 401 on purpose; anything else is a defect.
      if (m.type() === 'error' && !/status of 401/.test(m.text()) && !crashWindow) problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

    await page.goto(cluster.controller.url);
    await page.waitForSelector('input[name="token"][type="password"]');
    await page.fill('input[name="token"]', 'opa_wrong_token_for_the_browser');
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    assert.match(await page.textContent('[role="alert"]') ?? '', /not valid/);

    await page.fill('input[name="token"]', token);
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    for (const i of [0, 1, 2]) await row(page, `node${i}`, 'up');
    assert.equal(await page.locator('#s-nodes tbody tr').count(), 3);
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await page.evaluate<string>('document.cookie'), '', 'the session cookie is httpOnly');
    assertNoSecret('page source after sign-in', await page.content(), secrets);
    await page.waitForSelector('#p-server-stats svg.spark', { timeout: 30_000 });
    await page.waitForSelector('#live-status.ok', { timeout: 15_000 });
    await page.screenshot({ path: join(SHOTS, 'outpost-dashboard-desktop.png'), fullPage: true });

    // Cut node1 off the bridge: the open page, without a reload, shows it down.
    const before = page.url();
    await cluster.cutOff(1);
    await row(page, 'node1', 'down');
    await row(page, 'node0', 'up');
    await row(page, 'node2', 'up');
    assert.equal(page.url(), before, 'the update came from polling, not a navigation');
    assert.match(await page.textContent('#s-events') ?? '', /node\.down/);

    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    assert.ok(overflow <= 1, `phone layout scrolls sideways by ${overflow}px`);
    await page.screenshot({ path: join(SHOTS, 'outpost-dashboard-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    await cluster.restore(1);
    await row(page, 'node1', 'up');

    assertNoSecret('page source', await page.content(), secrets);

    // Controller crash: the page says it is reconnecting; once back it goes on, still signed in (sessions are in the store).
    crashWindow = true;
    await stopProc(cluster.controller.proc, 'SIGKILL');
    await page.waitForSelector('#live-status.warn', { timeout: 30_000 });
    assert.match((await page.textContent('#live-status')) ?? '', /reconnecting/);
    await cluster.controller.restart();
    await page.waitForSelector('#live-status.ok', { timeout: 60_000 });
    crashWindow = false;
    assert.equal(page.url(), before, 'no sign-in page in between');
    for (const i of [0, 1, 2]) await row(page, `node${i}`, 'up');
    await page.screenshot({ path: join(SHOTS, 'outpost-dashboard-after-restart.png'), fullPage: true });

    await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button')]);
    await page.waitForSelector('input[name="token"]');
    const fragment = await page.evaluate<number>("fetch('/dashboard/fragment').then((r) => r.status)");
    assert.equal(fragment, 401, 'signed out means the fragment endpoint refuses');

    for (const u of urls) assertNoSecret(`request URL ${u}`, decodeURIComponent(u), secrets);
    assert.deepEqual(problems, [], 'no console errors (CSP violations included)');
    t.diagnostic(`screenshots: ${join(SHOTS, 'outpost-dashboard-desktop.png')}, ${join(SHOTS, 'outpost-dashboard-phone.png')}`);
  } finally {
    await ctx?.close().catch(() => undefined);
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    await cluster.stop();
  }
});

const APP = 'busybox-httpd';
const APP_PORTS = { from: 9201, to: 9209 };


test('dashboard in Chromium: every action by clicking (join token, delete node, webhook, test event, retry, prober, app-store)', async (t) => {
  await docker.ping().catch((err) => assert.fail(`Docker Engine unreachable at ${DOCKER_SOCKET}: ${(err as Error).message} (test/e2e/run.sh starts it)`));
  const unlock = await lockDocker();
  const profile = await mkdtemp(join(tmpdir(), 'outpost-chromium-'));
  let failing = false;
  const rx = await startReceiver({ respond: () => (failing ? 500 : 200) });
  let c: TestController | undefined;
  const agents: TestAgent[] = [];
  let ctx: BrowserContext | undefined;
  try {
    await exec('bash', [join(ROOT, 'test/apps/build-busybox-image.sh')], { timeout: 120_000 });
    await removeAppLeftovers([APP]);
    const store = { catalogDirs: ['configs/apps', 'test/apps'], socketPath: DOCKER_SOCKET, ports: APP_PORTS, healthTimeoutSec: 30, stopTimeoutSec: 1 };
    c = await TestController.start({
      config: {
        webhooks: { baseDelayMs: 50, maxDelayMs: 200, timeoutMs: 5_000, maxAgeMs: 2_000 },
        plugins: { 'server-stats': { interval: 1 }, prober: { apps: { shop: {} }, minInterval: 5 }, 'app-store': store },
      },
    });
    agents.push(await TestAgent.start(c, { name: 'web-a', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, prober: {}, 'app-store': store } }));
    await until('web-a up with app-store and prober running', async () => {
      const n = await c!.node(agents[0].nodeId);
      return n?.state === 'up' && ['app-store', 'prober'].every((name) => n.plugins.some((p: { name: string; state: string }) => p.name === name && p.state === 'running'));
    }, 30_000);
    const secrets = [c.adminToken];

    ctx = await launch(profile);
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: c.url });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const problems = watchProblems(page);

    await signIn(page, c.url, c.adminToken);
    await row(page, 'web-a', 'up');

    // 1. A join token. The form survives the live refreshes that happen while it is being filled in.
    await expand(page, 'nodes-add');
    await page.getByLabel('Valid for').selectOption('1h');
    await page.getByLabel('Labels (optional)').fill('zone=lab');
    // A token created elsewhere changes the nodes section, so the page swaps it while the form is in use.
    const swap = refreshed(page, '#s-nodes');
    assert.equal((await c.api('POST', '/api/v1/tokens', { ttl: '10m' })).status, 201);
    await swap;
    assert.equal(await page.getByLabel('Valid for').inputValue(), '1h', 'a live refresh kept the choice');
    assert.equal(await page.getByLabel('Labels (optional)').inputValue(), 'zone=lab', 'and the typed text');
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'node-join-token-labels', 'and the focus');
    assert.equal(await page.locator('#nodes-add').getAttribute('open'), '', 'and the open <details>');
    await page.getByRole('button', { name: 'Create join token' }).click();
    const install = page.getByRole('textbox', { name: /^Install as a service/ });
    await install.waitFor();
    const installLine = await install.inputValue();
    const m = new RegExp(`^sudo scripts/install-agent\\.sh --controller ${c.url.replace(/[.]/g, '\\.')} --token (opj_[0-9a-f]{12}\\.[A-Za-z0-9_-]+)$`).exec(installLine);
    assert.ok(m, `install line: ${installLine}`);
    const token = m[1];
    secrets.push(token);
    assert.equal(await page.getByRole('textbox', { name: /^Or join from a checkout/ }).inputValue(), `npx outpost agent join --controller ${c.url} --token ${token} --config configs/agent.json`);
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'node-join-token-once-0', 'focus moves to the install line');
    assert.match((await status(page).textContent()) ?? '', /Join token [0-9a-f]{12} created/);
    await refreshed(page, '#s-nodes');
    assert.equal(await install.inputValue(), installLine, 'the one-time line survives live refreshes');
    await page.getByRole('button', { name: /^Copy: Install as a service/ }).click();
    await until('copied', async () => (await status(page).textContent()) === 'Copied.', 5_000);
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), installLine);

    // The node joins with the token read off the page, and shows up live.
    agents.push(await TestAgent.start(c, { name: 'from-dashboard', token, plugins: { 'server-stats': { interval: 1, diskInterval: 5 } } }));
    await row(page, 'from-dashboard', 'up');
    assert.match((await page.locator('#s-nodes tr[data-node="from-dashboard"]').textContent()) ?? '', /zone=lab/);
    await page.getByRole('button', { name: 'I have copied it: hide' }).click();
    assert.equal(await install.count(), 0, 'hidden means gone from the page');
    assertNoSecret('page after hiding the token', await page.content(), secrets);

    // 2. Delete that node: dismissing the question changes nothing, accepting deletes it. A keyboard
    // user's focus on the button survives the live refreshes of the nodes table.
    const del = page.getByRole('button', { name: 'Delete node from-dashboard' });
    await del.focus();
    await refreshed(page, '#s-nodes');
    assert.equal(await page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label')"), 'Delete node from-dashboard');
    await clickConfirming(page, del, /^Delete node from-dashboard\? Its credential is revoked/, false);
    assert.equal(await status(page).textContent(), 'Cancelled.');
    assert.equal((await c.node(agents[1].nodeId))?.name, 'from-dashboard');
    await clickConfirming(page, del, /^Delete node from-dashboard\?/, true);
    await page.locator('#s-nodes tr[data-node="from-dashboard"]').waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal((await c.api('GET', `/api/v1/nodes/${agents[1].nodeId}`)).status, 404);
    assert.equal(await status(page).textContent(), 'Node from-dashboard deleted.');

    // 3. A webhook: the signing secret is shown once, and the receiver's test event verifies with it.
    await expand(page, 'webhooks-add');
    await page.getByLabel('Receiver URL').fill(rx.url);
    await page.getByLabel('test.ping').check();
    await page.getByLabel('Description (optional)').fill('added in Chromium');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const secretField = page.getByRole('textbox', { name: 'Signing secret' });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    assert.match(secret, /^[A-Za-z0-9_-]{32}$/);
    secrets.push(secret);
    await page.locator('#s-webhooks tr[data-webhook]').filter({ hasText: 'added in Chromium' }).waitFor();

    await expand(page, 'webhooks-test');
    await page.getByLabel('Message (optional)').fill('clicked in Chromium');
    await page.getByRole('button', { name: 'Send test event' }).click();
    const got = await rx.waitFor('test.ping', (r) => r.json?.data?.message === 'clicked in Chromium');
    assert.ok(verifyOutpostSignature(secret, got.body, String(got.headers['x-outpost-signature'])), 'signed with the secret the page showed');
    assert.match((await page.locator('#webhook-test-result pre').textContent()) ?? '', /"event": "test.ping"/, 'the JSON answer is shown');

    // 4. A dead delivery, retried by clicking.
    failing = true;
    await page.getByLabel('Message (optional)').fill('dies first');
    await page.getByRole('button', { name: 'Send test event' }).click();
    const deadRow = page.locator('#s-webhooks tr[data-delivery][data-state="dead"]');
    await deadRow.waitFor({ timeout: 30_000 });
    const deliveryId = (await deadRow.getAttribute('data-delivery'))!;
    failing = false;
    await page.getByRole('button', { name: `Retry delivery ${deliveryId} of test.ping` }).click();
    const retried = await rx.waitFor('test.ping', (r) => r.headers['x-outpost-delivery'] === deliveryId && r.status === 200);
    assert.equal(retried.json.data.message, 'dies first');
    await page.locator(`#s-webhooks tr[data-delivery="${deliveryId}"][data-state="delivered"]`).waitFor({ timeout: 15_000 });

    // 5. A prober monitor from the prober panel: tcp to the controller's own port, up within a round or two.
    await expand(page, 'prober-add');
    const monitor = page.locator('#prober-add-monitor');
    await monitor.getByLabel('Group id').fill('9');
    await monitor.getByLabel('Record ids').fill('91');
    await monitor.getByLabel('Targets').fill('127.0.0.1');
    await monitor.getByLabel('Protocol').selectOption('tcp');
    await monitor.getByLabel('Port').fill(String(c.port));
    await monitor.getByLabel('Interval (s)').fill('5');
    await monitor.getByLabel('Timeout (s)').fill('2');
    await monitor.getByRole('button', { name: 'Add monitor' }).click();
    await until('monitor saved', async () => /Monitor shop \/ 9 saved/.test((await status(page).textContent()) ?? ''), 10_000);
    await page.locator('#p-prober tr[data-group="shop:9"] .badge.ok').waitFor({ timeout: 60_000 });
    await clickConfirming(page, page.getByRole('button', { name: 'Stop monitor shop / 9' }), /^Stop monitor shop \/ 9\?/, true);
    await page.locator('#p-prober tr[data-group="shop:9"]').waitFor({ state: 'detached', timeout: 15_000 });

    // 6. Install from the app-store panel on the chosen node, see it run and serve, uninstall it.
    await expand(page, 'app-store-add');
    await page.getByLabel('App', { exact: true }).selectOption(APP);
    await page.getByLabel('Node', { exact: true }).selectOption({ label: 'web-a' });
    await page.getByRole('button', { name: 'Install', exact: true }).click();
    await until('install accepted', async () => /安装成功/.test((await status(page).textContent()) ?? ''), 30_000);
    const running = page.locator(`#p-app-store tr[data-app="${APP}"][data-status="1"]`);
    await running.waitFor({ timeout: 120_000 });
    const port = /(\d+)→8080\/tcp/.exec((await running.textContent()) ?? '')?.[1];
    assert.ok(port && Number(port) >= APP_PORTS.from && Number(port) <= APP_PORTS.to, `host port ${port} from the configured range`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/first`)).status, 200, 'the installed app serves');
    const appSecrets = await c.api('GET', `/api/v1/apps/web-a/${APP}/secrets`);
    secrets.push(appSecrets.body.secrets.token);
    assertNoSecret('page with a running app', await page.content(), secrets);
    await page.screenshot({ path: join(SHOTS, 'outpost-dashboard-actions.png'), fullPage: true });
    await clickConfirming(page, page.getByRole('button', { name: `Uninstall ${APP} from web-a` }), /volumes \(data\) are kept/, true);
    await page.locator(`#p-app-store tr[data-app="${APP}"][data-status="0"]`).waitFor({ timeout: 120_000 });

    await page.reload();
    await row(page, 'web-a', 'up');
    assertNoSecret('page source after reload', await page.content(), secrets);
    assert.deepEqual(problems, [], 'no console errors (CSP violations included)');
    t.diagnostic(`screenshot: ${join(SHOTS, 'outpost-dashboard-actions.png')}`);
  } finally {
    await ctx?.close().catch(() => undefined);
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    if (c) await c.api('POST', '/uninstallApp', { appName: APP, node: 'web-a', purge: true }).catch(() => undefined);
    await Promise.allSettled(agents.map((a) => a.stop()));
    await c?.stop();
    await rx.close();
    await removeAppLeftovers([APP]).catch(() => undefined);
    await unlock();
  }
});
