/**
 * app-store: install-to-running time of the busybox httpd test app through the Websoft9 API
 * (installApp → getAppInfo status 1, HTTP answering), beside the floor of the same container started
 * with `docker run` and polled the same way; then N apps installed at once (all distinct ports, total
 * time, agent RSS). Needs a Docker Engine on /var/run/docker.sock (see test/e2e/app-store.e2e.ts).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, TestAgent, TestController, until } from '../../test/helpers/cluster.ts';
import { lockDocker } from '../../test/apps/docker-lock.ts';
import { numericFlags } from './lib/args.ts';
import { readProc } from './lib/proc.ts';
import { figure, mb, percentile, printTable, progress } from './lib/report.ts';

const opts = numericFlags('app-store', { rounds: 5, apps: 20 });
const exec = promisify(execFile);
const quiet = { OUTPOST_LOG_LEVEL: 'warn' };
const RANGE = { from: 9001, to: 9099 };
const IMAGE = 'outpost-test/busybox:latest';

await exec('bash', [join(ROOT, 'test/apps/build-busybox-image.sh')]).catch((err) => {
  process.stderr.write(`bench app-store: Docker Engine or busybox image unavailable: ${err.message}\n`);
  process.exit(1);
});

const unlock = await lockDocker();

// The parallel phase needs N catalog apps: copies of the test app under bench-NN names.
const catalog = await mkdtemp(join(tmpdir(), 'outpost-bench-apps-'));
const template = JSON.parse(await readFile(join(ROOT, 'test/apps/busybox-httpd.json'), 'utf8'));
const names = Array.from({ length: opts.apps }, (_, i) => `bench-${String(i + 1).padStart(2, '0')}`);
for (const name of names) await writeFile(join(catalog, `${name}.json`), JSON.stringify({ ...template, name }));

const store = { catalogDirs: ['test/apps', catalog], ports: RANGE, stopTimeoutSec: 1, healthTimeoutSec: 120 };
const c = await TestController.start({ config: { plugins: { 'app-store': store } }, env: quiet });
const a = await TestAgent.start(c, { name: 'bench', plugins: { 'app-store': store }, env: quiet });
const seed = (path: string, body: Record<string, unknown>) => c.api('POST', path, body);

async function untilServing(port: number | string): Promise<void> {
  await until(`HTTP on ${port}`, async () => (await fetch(`http://127.0.0.1:${port}/index.html`).catch(() => null))?.ok, 120_000, 20);
}

try {
  await until('agent up with app-store', async () => {
    const n = await c.node(a.nodeId);
    return n?.state === 'up' && n.plugins.some((p: { name: string; state: string }) => p.name === 'app-store' && p.state === 'running');
  }, 30_000);

  // Phase 1: one app, installed and removed `rounds` times.
  const viaApi: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < opts.rounds; i++) {
    progress(`round ${i + 1}/${opts.rounds}`);
    const t0 = performance.now();
    const r = await seed('/installApp', { appName: 'busybox-httpd' });
    if (r.body?.code !== '1') throw new Error(`install failed: ${r.text}`);
    await until('status 1', async () => (await seed('/getAppInfo', { appName: 'busybox-httpd' })).body?.data?.status === '1', 120_000, 20);
    await untilServing(r.body.data.port);
    viaApi.push(performance.now() - t0);
    await seed('/uninstallApp', { appName: 'busybox-httpd', purge: true });

    const t1 = performance.now();
    const port = RANGE.to;
    const { stdout } = await exec('docker', ['run', '-d', '--label', 'outpost-test=1', '-p', `${port}:8080`, IMAGE, 'httpd', '-f', '-p', '8080', '-h', '/www']);
    await untilServing(port);
    floor.push(performance.now() - t1);
    await exec('docker', ['rm', '-f', stdout.trim()]);
  }

  // Phase 2: N different apps asked for at once.
  progress(`${opts.apps} apps at once`);
  const pid = a.proc.child.pid!;
  const rssBefore = readProc(pid).rssBytes;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, readProc(pid).rssBytes)), 100);
  const t2 = performance.now();
  const answers = await Promise.all(names.map((appName) => seed('/installApp', { appName })));
  const answeredMs = performance.now() - t2;
  const refused = answers.filter((r) => r.body?.code !== '1');
  if (refused.length) throw new Error(`${refused.length} installs refused: ${refused[0].text}`);
  const ports = answers.map((r) => Number(r.body.data.port));
  await Promise.all(
    names.map((appName, i) =>
      until(`${appName} running`, async () => (await seed('/getAppInfo', { appName })).body?.data?.status === '1', 300_000, 100).then(() => untilServing(ports[i])),
    ),
  );
  const allMs = performance.now() - t2;
  clearInterval(sampler);
  const rssAfter = readProc(pid).rssBytes;
  const distinct = new Set(ports).size;
  const inRange = ports.every((p) => p >= RANGE.from && p <= RANGE.to);
  progress('removing the apps');
  const wipe = await c.api('POST', '/uninstallAllApp', { purge: true });
  if (wipe.body?.code !== '1') throw new Error(`uninstallAllApp failed: ${wipe.text}`);

  // The peer for phase 2: the same containers started at once with `docker run` (no network, volume or health wait).
  progress(`peer: ${opts.apps} × docker run at once`);
  const t3 = performance.now();
  const ids = await Promise.all(names.map((_, i) => exec('docker', ['run', '-d', '--label', 'outpost-test=1', '-p', `${RANGE.from + i}:8080`, IMAGE, 'httpd', '-f', '-p', '8080', '-h', '/www']).then((r) => r.stdout.trim())));
  await Promise.all(names.map((_, i) => untilServing(RANGE.from + i)));
  const peerMs = performance.now() - t3;
  await exec('docker', ['rm', '-f', ...ids]);

  const med = percentile(viaApi, 50);
  const floorMed = percentile(floor, 50);
  printTable(`install-to-running, busybox httpd, ${opts.rounds} rounds (ms)`, [
    ['Outpost installApp → status 1 → HTTP', med.toFixed(0), Math.min(...viaApi).toFixed(0), Math.max(...viaApi).toFixed(0)],
    ['peer: docker run -d -p → HTTP', floorMed.toFixed(0), Math.min(...floor).toFixed(0), Math.max(...floor).toFixed(0)],
  ], ['path', 'p50', 'min', 'max']);
  printTable(`${opts.apps} apps installed at once`, [
    ['all installApp answers (code "1")', `${answeredMs.toFixed(0)} ms`],
    ['all running and serving HTTP', `${(allMs / 1000).toFixed(1)} s`],
    [`peer: ${opts.apps} × docker run -d -p → HTTP`, `${(peerMs / 1000).toFixed(1)} s`],
    ['distinct host ports', `${distinct}/${opts.apps}${inRange ? ` (all in ${RANGE.from}-${RANGE.to})` : ' (SOME OUT OF RANGE)'}`],
    ['agent RSS before / peak / after', `${mb(rssBefore)} / ${mb(rssPeak)} / ${mb(rssAfter)}`],
  ]);
  figure('app-store', `install-to-running p50 ${med.toFixed(0)} ms (docker run floor ${floorMed.toFixed(0)} ms); ${opts.apps} apps at once running in ${(allMs / 1000).toFixed(1)} s (docker run floor ${(peerMs / 1000).toFixed(1)} s), ${distinct}/${opts.apps} distinct ports, agent RSS peak ${mb(rssPeak)}`);
  if (distinct !== opts.apps || !inRange) process.exitCode = 1;
} finally {
  await a.stop();
  await c.stop();
  await rm(catalog, { recursive: true, force: true });
  await unlock();
}
