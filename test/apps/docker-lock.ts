/**
 * One app-store run at a time per Docker Engine: the test apps' container names (websoft9-<app>)
 * are global to the Engine, so an e2e run and a benchmark started together would remove each
 * other's containers. mkdir is atomic; a lock whose holder died is taken over.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { pidAlive } from '../helpers/cluster.ts';

const LOCK = process.env.OUTPOST_APP_STORE_LOCK ?? '/tmp/outpost-app-store-docker.lock';


export async function lockDocker(timeoutMs = 15 * 60_000): Promise<() => Promise<void>> {
  const end = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      await mkdir(LOCK);
      await writeFile(`${LOCK}/pid`, String(process.pid));
      return () => rm(LOCK, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(await readFile(`${LOCK}/pid`, 'utf8').catch(() => '0'));
    // A lock without a pid file yet is being taken right now: only a dead holder's lock is stale.
    if (holder && !pidAlive(holder)) {
      await rm(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > end) throw new Error(`another app-store run (pid ${holder}) has held ${LOCK} for too long`);
    if (!said) process.stderr.write(`waiting for the app-store run of pid ${holder} to finish (${LOCK})\n`);
    said = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}
