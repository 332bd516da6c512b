/** Chromium for dashboard tests: Debian's package driven by playwright-core (a missing browser fails naming the package), and the page helpers the tests share. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

export const CHROMIUM = process.env.OUTPOST_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const SHOTS = process.env.OUTPOST_SCREENSHOT_DIR ?? tmpdir();

export async function launchChromium(profile: string): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}: install the Debian package "chromium" (test/e2e/run.sh does)`);
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
}

export function assertNoSecret(where: string, text: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!text.includes(s), `${where} contains a secret`);
}

/** Clicks a confirming button; the dialog must ask `question`, and is accepted or dismissed. */
export async function clickConfirming(page: Page, button: Locator, question: RegExp, accept: boolean): Promise<void> {
  const asked = page.waitForEvent('dialog').then(async (d) => {
    assert.equal(d.type(), 'confirm');
    assert.match(d.message(), question);
    await (accept ? d.accept() : d.dismiss());
  });
  await button.click();
  await asked;
}

export const status = (page: Page) => page.locator('#action-status');

/** Opens a disclosure by clicking its summary, unless it is open already (some start open when their list is empty). */
export async function expand(page: Page, id: string): Promise<void> {
  if ((await page.locator(`#${id}`).getAttribute('open')) === null) await page.locator(`#${id} > summary`).click();
}

/** Resolves once the live refresh has replaced the section's HTML (its first table is a new element). */
export async function refreshed(page: Page, section: string): Promise<void> {
  await page.evaluate(`document.querySelector('${section} table').dataset.old = '1'`);
  await page.locator(`${section} table[data-old]`).waitFor({ state: 'detached', timeout: 15_000 });
}

/** Console errors and page errors of the page, collected for a test's final check. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return problems;
}

/** Signs in with the admin token on the sign-in page at url. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Admin token').fill(token);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
}
