#!/usr/bin/env node
/**
 * Signs and sends one Serendipity-Job request to Outpost's jobs API, the way an existing client does:
 * headers app-key, nonce (16 fresh alphanumerics), timestamps (Unix seconds), payload = md5(appName),
 * signature = base64(hex HMAC-SHA256(timestamps + nonce + payload, secretKey)). Node only, no dependencies.
 *
 * The original's clients name the first header `app_key`. The controller's server (uWebSockets.js)
 * drops requests whose header names hold an underscore, so this script sends `app-key`, which Outpost
 * reads as the same header (as nginx users already do); clients that keep `app_key` use the jobs
 * plugin's `listen` port (plugins/jobs/README.md).
 *
 *   node scripts/jobs-sign.mjs POST /task/create '{"content":{"order":42},"runtime":"2030-01-01 08:00:00"}'
 *   node scripts/jobs-sign.mjs GET '/task/detail?id=1'
 *   node scripts/jobs-sign.mjs --headers      # print a header set for curl -H instead of sending
 *
 * Credentials and address from the environment: JOBS_APP_KEY, JOBS_APP_NAME, JOBS_SECRET_KEY (the
 * answer of /application/create) and JOBS_URL (default http://127.0.0.1:7070).
 */
import { createHash, createHmac, randomInt } from 'node:crypto';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`jobs-sign: set ${name} (JOBS_APP_KEY, JOBS_APP_NAME and JOBS_SECRET_KEY come from /application/create)\n`);
    process.exit(2);
  }
  return v;
};

function headers() {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const nonce = Array.from({ length: 16 }, () => alphabet[randomInt(alphabet.length)]).join('');
  const timestamps = String(Math.floor(Date.now() / 1000));
  const payload = createHash('md5').update(env('JOBS_APP_NAME'), 'utf8').digest('hex');
  const hex = createHmac('sha256', env('JOBS_SECRET_KEY')).update(timestamps + nonce + payload).digest('hex');
  return { 'app-key': env('JOBS_APP_KEY'), nonce, timestamps, payload, signature: Buffer.from(hex).toString('base64') };
}

const args = process.argv.slice(2);
if (args[0] === '--headers') {
  for (const [k, v] of Object.entries(headers())) process.stdout.write(`${k}: ${v}\n`);
  process.exit(0);
}
const [method, path, body] = args;
if (!method || !path || !['GET', 'POST'].includes(method.toUpperCase())) {
  process.stderr.write('usage: node scripts/jobs-sign.mjs GET|POST <path> [json body]   or   node scripts/jobs-sign.mjs --headers\n');
  process.exit(2);
}
const base = process.env.JOBS_URL ?? 'http://127.0.0.1:7070';
const res = await fetch(new URL(path, base), {
  method: method.toUpperCase(),
  headers: { ...headers(), ...(body ? { 'content-type': 'application/json' } : {}) },
  body: body ?? undefined,
});
process.stdout.write(`${await res.text()}\n`);
process.exitCode = res.ok ? 0 : 1;
