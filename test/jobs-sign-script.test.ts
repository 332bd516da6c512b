import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryNonceStore } from '../plugins/jobs/nonce-store.ts';
import { FailureLimiter } from '../plugins/jobs/rate-limit.ts';
import { appPayload } from '../plugins/jobs/sign.ts';
import { RequestVerifier } from '../plugins/jobs/verify.ts';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'jobs-sign.mjs');
const app = { appKey: 'E3F5l1uKFcXUe1gd', appName: '帅的批爆1', payload: appPayload('帅的批爆1'), secretKey: 'pOKCTaHwMZaKPk3lfbVYfW07NuFjMAXX' };

test("scripts/jobs-sign.mjs signs requests the verifier accepts, each with a fresh nonce", async () => {
  const limit = { max: 100, windowSec: 60 };
  const verifier = new RequestVerifier({ findApp: (k) => (k === app.appKey ? app : undefined), nonces: new MemoryNonceStore(), limiter: new FailureLimiter(), windowSec: 300, nonceRetentionSec: 300, perAppIp: limit, perIp: limit });
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const v = await verifier.verify(req.headers, '127.0.0.1');
      if (!v.ok) return res.writeHead(v.status).end(JSON.stringify({ code: 1, msg: v.message, data: [] }));
      await v.claim.commit();
      bodies.push(`${req.method} ${req.url} ${Buffer.concat(chunks).toString('utf8')}`);
      res.end(JSON.stringify({ code: 0, msg: 'ok!', data: { taskId: bodies.length } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const env = { ...process.env, JOBS_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, JOBS_APP_KEY: app.appKey, JOBS_APP_NAME: app.appName, JOBS_SECRET_KEY: app.secretKey };
    const a = await run(process.execPath, [SCRIPT, 'POST', '/task/create', '{"content":{"order":42}}'], { env });
    assert.equal(a.stdout.trim(), '{"code":0,"msg":"ok!","data":{"taskId":1}}');
    const b = await run(process.execPath, [SCRIPT, 'GET', '/task/detail?id=1'], { env });
    assert.match(b.stdout, /"code":0/);
    assert.deepEqual(bodies, ['POST /task/create {"content":{"order":42}}', 'GET /task/detail?id=1 ']);
    // A wrong secret is refused, and the script exits non-zero.
    await assert.rejects(run(process.execPath, [SCRIPT, 'GET', '/task/detail?id=1'], { env: { ...env, JOBS_SECRET_KEY: 'x'.repeat(32) } }), (e: { stdout: string }) => /signature: does not match/.test(e.stdout));
    // --headers prints a complete set.
    const h = await run(process.execPath, [SCRIPT, '--headers'], { env });
    assert.deepEqual(h.stdout.trim().split('\n').map((l) => l.split(':')[0]), ['app-key', 'nonce', 'timestamps', 'payload', 'signature']);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
