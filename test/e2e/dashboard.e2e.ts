/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against three agents
 * in network namespaces: sign in, watch all three up, cut one off and see it turn down without a
 * reload, restore it, survive a controller crash (reconnecting, then asked to sign in again), sign
 * out. No token may ever show up in a URL, the page source or document.cookie.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startNetnsCluster, type NetnsCluster } from './lib/netns-cluster.ts';
import { stopProc } from '../helpers/cluster.ts';

const CHROMIUM = process.env.OUTPOST_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = process.env.OUTPOST_SCREENSHOT_DIR ?? tmpdir();

async function launch(profile: string): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}: install the Debian package "chromium" (test/e2e/run.sh does)`);
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
}

function assertNoSecret(where: string, text: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!text.includes(s), `${where} contains a secret`);
}

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

    // Controller crash: the page says it is reconnecting; once back (sessions are in memory) it asks to sign in again.
    crashWindow = true;
    await stopProc(cluster.controller.proc, 'SIGKILL');
    await page.waitForSelector('#live-status.warn', { timeout: 30_000 });
    assert.match((await page.textContent('#live-status')) ?? '', /reconnecting/);
    await cluster.controller.restart();
    await page.waitForSelector('#live-status.bad', { timeout: 60_000 });
    await Promise.all([page.waitForNavigation(), page.click('main [role="alert"] a[href="/"]')]);
    crashWindow = false;
    await page.fill('input[name="token"]', token);
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
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
    await rm(profile, { recursive: true, force: true });
    await cluster.stop();
  }
});
