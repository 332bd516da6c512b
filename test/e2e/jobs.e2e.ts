/**
 * The jobs panel in a real browser (Debian's chromium driven by playwright-core), on loopback with a
 * controller, one agent and a callback receiver: create an application (its secret shown once, and it
 * is the one callbacks are signed with), cancel a running task (its request is cut on the node),
 * re-run a failed one, and see a due task wait while no node can take it. No secret in the page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { assertNoSecret, clickConfirming, expand, launchChromium as launch, signIn, SHOTS, status, watchProblems } from './lib/chromium.ts';
import { TestAgent, TestController, until } from '../helpers/cluster.ts';
import { JobsClient, type JobsApp } from '../helpers/jobs-client.ts';
import { JobsReceiver } from '../helpers/jobs-receiver.ts';

const taskRow = (page: Page, id: number, status: number) => page.locator(`#p-jobs tr[data-task="${id}"][data-status="${status}"]`).waitFor({ timeout: 30_000 });

test('jobs panel in Chromium: create an application, cancel a running task, re-run a failed one, a due task waiting for a node', async (t) => {
  const profile = await mkdtemp(join(tmpdir(), 'outpost-chromium-'));
  const rcv = await JobsReceiver.start();
  let failing = true;
  rcv.answer = (call) => {
    const tag = (call.data as { tag?: string } | undefined)?.tag;
    if (tag === 'hold') return 'hold';
    if (tag === 'fails' && failing) return { status: 500, body: 'down for maintenance' };
    return { body: 'success' };
  };
  let c: TestController | undefined;
  let agent: TestAgent | undefined;
  let ctx: BrowserContext | undefined;
  try {
    c = await TestController.start({ config: { plugins: { jobs: {} } } });
    agent = await TestAgent.start(c, { name: 'edge', plugins: { jobs: {} } });
    await until('edge runs jobs', async () => (await c!.node(agent!.nodeId))?.plugins?.some((p: { name: string; state: string }) => p.name === 'jobs' && p.state === 'running'), 30_000);
    const secrets = [c.adminToken];

    ctx = await launch(profile);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const problems = watchProblems(page);
    await signIn(page, c.url, c.adminToken);
    await page.locator('#p-jobs').waitFor();

    // 1. An application: its secret is shown once, and callbacks are signed with it.
    await expand(page, 'jobs-add');
    const form = page.locator('#jobs-create-app');
    await form.getByLabel('Name').fill('shop-e2e');
    await form.getByLabel('Callback URL').fill(rcv.url('/callback'));
    await form.getByLabel('Retries after the first attempt').fill('0');
    await form.getByRole('button', { name: 'Create application' }).click();
    const secretField = page.getByRole('textbox', { name: 'secretKey' });
    await secretField.waitFor();
    const app: JobsApp = { appName: 'shop-e2e', appKey: await page.getByRole('textbox', { name: 'app_key' }).inputValue(), secretKey: await secretField.inputValue() };
    assert.match(app.secretKey, /^[A-Za-z0-9]{32}$/);
    secrets.push(app.secretKey);
    rcv.secret = app.secretKey;
    assert.match((await status(page).textContent()) ?? '', /Application shop-e2e created/);
    await page.locator(`#p-jobs tr[data-app="${app.appKey}"]`).waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'I have copied it: hide' }).click();
    assertNoSecret('page after hiding the secret', await page.content(), secrets);
    const jobs = new JobsClient(c);

    // 2. Cancel a running task: the node cuts its request.
    const held = await jobs.createTask(app, { taskNo: 'held', content: { tag: 'hold' } });
    const [heldCall] = await rcv.waitFor(held);
    assert.ok(heldCall.signedOk && heldCall.bodySignedOk, 'signed with the secret the page showed');
    await taskRow(page, held, 1);
    await clickConfirming(page, page.getByRole('button', { name: `Cancel task ${held}` }), /^Cancel task \d+ \(its callback in flight is aborted\)\?$/, true);
    await taskRow(page, held, 3);
    await until('the request was cut on the node', () => rcv.of(held)[0].aborted, 15_000);
    assert.equal(await status(page).textContent(), `Task ${held} cancelled.`);

    // 3. Re-run a failed task once its receiver works again.
    const fails = await jobs.createTask(app, { taskNo: 'fails', content: { tag: 'fails' } });
    await taskRow(page, fails, 4);
    assert.match((await page.locator(`#p-jobs tr[data-task="${fails}"]`).textContent()) ?? '', /HTTP 500: "down for maintenance"/);
    failing = false;
    await clickConfirming(page, page.getByRole('button', { name: `Re-run task ${fails}` }), /^Run task \d+ again/, true);
    await taskRow(page, fails, 2);
    assert.equal(rcv.of(fails).length, 2);

    // 4. No node can take a due task: the row says why, and the task runs once the node is back.
    await agent.kill('SIGKILL');
    await until('edge down', async () => (await c!.node(agent!.nodeId))?.state === 'down', 15_000);
    const waits = await jobs.createTask(app, { taskNo: 'waits', content: { tag: 'waits' } });
    const waitingRow = page.locator(`#p-jobs tr[data-task="${waits}"]`);
    await until('the row says it waits', async () => /waiting: no live node runs the jobs plugin/.test((await waitingRow.textContent().catch(() => '')) ?? ''), 15_000);
    await page.screenshot({ path: join(SHOTS, 'outpost-dashboard-jobs.png'), fullPage: true });
    await agent.restart();
    await taskRow(page, waits, 2);

    await page.reload();
    await page.locator('#p-jobs').waitFor();
    assertNoSecret('page source after reload', await page.content(), secrets);
    assert.deepEqual(problems, [], 'no console errors (CSP violations included)');
    t.diagnostic(`screenshot: ${join(SHOTS, 'outpost-dashboard-jobs.png')}`);
  } finally {
    await ctx?.close().catch(() => undefined);
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    await agent?.stop();
    await c?.stop();
    await rcv.close();
  }
});
