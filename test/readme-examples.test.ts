/**
 * README.md runs verbatim against `outpost start` (what `npm start` runs): every curl example is read
 * out of the file (test/helpers/readme-curl.ts says what counts and which shell and curl syntax is
 * understood), sent with fetch in reading order, and its answer checked for its API's envelope and
 * for success. Only the base URLs change: http://127.0.0.1:7070 (controller) and :7071 (the local
 * agent) become this run's ports; any other address fails the test. $OUTPOST_ADMIN_TOKEN is the
 * token the start printed; `answers:` fences (see the helper) define more variables.
 *
 * Success may take a moment after the banner (stats arrive with the node's first sample, a monitor's
 * state after its first round): an example that does not succeed is sent again for up to 30 s.
 * Where an example needs what this machine may lack (the app-store routes need a Docker Engine), the
 * test looks for it itself and then expects the product's clear error instead of success.
 *
 * A new README section whose curls reach a path no ENVELOPES entry covers fails here, naming the
 * path: add its API's envelope below.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { ROOT, http, run, stopProc, tempDir, until, type ApiResponse, type Proc } from './helpers/cluster.ts';
import { answerValue, curlRequest, extractCommands, extractExamples, shellWords, type CommandExample, type CurlExample } from './helpers/readme-curl.ts';

// ---------------------------------------------------------------------------------------------------
// The parser first: what it accepts, and that it refuses what it cannot run instead of skipping it.

test('readme-curl: examples, continuations, prompts, inline spans and answers: fences', () => {
  const md = [
    'Try `curl http://127.0.0.1:7070/healthz` first.',
    '```sh answers: ID=2.webhook.id',
    'export X=1',
    '$ curl -s http://127.0.0.1:7070/a',
    'curl -X POST \\',
    "  -d 'a=1' http://127.0.0.1:7070/b",
    '{"output": "lines are not commands"}',
    '```',
    '~~~',
    'curl http://127.0.0.1:7070/c',
    '~~~',
  ].join('\n');
  const ex = extractExamples(md);
  assert.deepEqual(ex.map((e) => [e.line, e.source]), [
    [1, 'curl http://127.0.0.1:7070/healthz'],
    [4, 'curl -s http://127.0.0.1:7070/a'],
    [5, "curl -X POST \\\n  -d 'a=1' http://127.0.0.1:7070/b"],
    [10, 'curl http://127.0.0.1:7070/c'],
  ]);
  assert.deepEqual(ex[2].captures, [{ name: 'ID', path: ['webhook', 'id'] }]);
  assert.throws(() => extractExamples('```sh\nID=$(curl http://x/)\n```'), /README\.md:2: curl that does not start the line/);
  assert.throws(() => extractExamples('```sh answers: ID=3.id\ncurl http://x/\n```'), /names curl 3 of a block that has 1/);
  assert.throws(() => extractExamples('```sh answers: 1.id\ncurl http://x/\n```'), /must be NAME=N\.path/);
  assert.throws(() => extractExamples('```sh\ncurl http://x/\n'), /never closed/);
});

test('readme-curl: fenced node scripts and exports, in reading order', () => {
  const md = ['```sh', 'export A=1 B=two', '$ node scripts/x.mjs GET /a', 'nodejs scripts/y.mjs', '```', 'node scripts/outside.mjs'].join('\n');
  assert.deepEqual(extractCommands(md), [
    { line: 2, kind: 'export', source: 'export A=1 B=two' },
    { line: 3, kind: 'script', source: 'node scripts/x.mjs GET /a' },
  ]);
  assert.throws(() => extractCommands('```\nnode scripts/x.mjs \\\n  more\n```'), /README\.md:2: a continued node scripts\/ line/);
});

test('readme-curl: shell words, quoting and variables', () => {
  const vars = { T: 'tok en', U: 'u' };
  assert.deepEqual(shellWords(`curl -H "Authorization: Bearer $T" 'it''s' a\\ b "\${U}x" "q\\"\\$" ''`, vars), ['curl', '-H', 'Authorization: Bearer tok en', 'its', 'a b', 'ux', 'q"$', '']);
  assert.deepEqual(shellWords("curl \\\n  -d 'x=$T' $U # a comment", vars), ['curl', '-d', 'x=$T', 'u']);
  for (const bad of ['curl x | jq', 'curl x > f', 'curl x; rm y', 'curl "$(id)"', 'curl `id`', 'curl x &']) assert.throws(() => shellWords(bad, vars), /unsupported shell syntax/, bad);
  assert.throws(() => shellWords('curl $NOPE', vars), /\$NOPE is not defined for the README test \(known: T, U\)/);
  assert.throws(() => shellWords("curl 'open", vars), /unterminated '/);
});

test('readme-curl: curl flags become the request curl would send', () => {
  const req = (cmd: string) => curlRequest(shellWords(cmd, {}));
  assert.deepEqual(req('curl http://h/x'), { method: 'GET', url: 'http://h/x', headers: {} });
  assert.deepEqual(req("curl -sS -d a=1 --data 'b=2' http://h/x"), { method: 'POST', url: 'http://h/x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=2' });
  assert.deepEqual(req(`curl -XPUT -H 'Content-Type: application/json' -d '{"a": 1}' http://h/x`), { method: 'PUT', url: 'http://h/x', headers: { 'content-type': 'application/json' }, body: '{"a": 1}' });
  assert.deepEqual(req("curl -G --data-urlencode 'q=a b&c' -d n=1 'http://h/x?z=0'"), { method: 'GET', url: 'http://h/x?z=0&q=a%20b%26c&n=1', headers: {} });
  assert.deepEqual(req(`curl --json '{"a":1}' --url http://h/x`), { method: 'POST', url: 'http://h/x', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: '{"a":1}' });
  assert.throws(() => req('curl -L http://h/x'), /curl flag "-L" is not interpreted by the README test/);
  assert.throws(() => req('curl -d @body.json http://h/x'), /data from a file is not supported/);
  assert.throws(() => req('curl http://h/x http://h/y'), /two URLs/);
  assert.throws(() => req('curl -s'), /without a URL/);
  assert.equal(answerValue({ a: { b: [{ c: 7 }] } }, ['a', 'b', '0', 'c']), '7');
  assert.throws(() => answerValue({ a: {} }, ['a', 'id']), /the answer has no "a\.id" \(stopped at "id"\)/);
});

// ---------------------------------------------------------------------------------------------------
// README.md against a real `outpost start`.

type Answer = ApiResponse;
interface Envelope {
  name: string;
  paths: RegExp;
  /** Whether the answer is this API's success. */
  ok(a: Answer): boolean;
  /** The error message if the answer is this API's error envelope, else undefined. */
  error(a: Answer): string | undefined;
  needs?: 'docker';
}

const ENVELOPES: Envelope[] = [
  {
    name: 'native REST',
    paths: /^\/api\/v1\//,
    ok: (a) => a.status >= 200 && a.status < 300 && typeof a.body === 'object' && a.body !== null && !('error' in a.body),
    error: (a) => (a.body?.error?.status === a.status && typeof a.body.error.message === 'string' ? a.body.error.message : undefined),
  },
  {
    name: 'Websoft9 (server-stats)',
    paths: /^\/searchServer$/,
    ok: (a) => a.status === 200 && a.body?.code === '1',
    error: (a) => (a.body?.code === '0' && typeof a.body.message === 'string' ? a.body.message : undefined),
  },
  {
    name: 'Websoft9 (app-store)',
    paths: /^\/(installApp|uninstallApp|getAppInfo|getAllAppInfo|uninstallAllApp)$/,
    ok: (a) => a.status === 200 && a.body?.code === '1',
    error: (a) => (a.body?.code === '0' && typeof a.body.message === 'string' ? a.body.message : undefined),
    needs: 'docker',
  },
  {
    name: 'iplive',
    paths: /^\/(operate_monitor|update_monitor|stop_monitor|add_node|deal|node_tasks)$/,
    ok: (a) => a.status === 200 && a.body?.code === 1000,
    error: (a) => (typeof a.body?.code === 'number' && typeof a.body.msg === 'string' ? a.body.msg : undefined),
  },
  {
    name: 'Serendipity-Job',
    paths: /^\/(application\/create|task\/create|task\/detail|task\/cancel|nsq\/publish)$/,
    ok: (a) => a.status === 200 && a.body?.code === 0,
    error: (a) => (a.body?.code === 1 && typeof a.body.msg === 'string' ? a.body.msg : undefined),
  },
  {
    // HTTP 200 always; the outcome is statusCode (401, 405...). The badge and status page are SVG and HTML.
    name: 'CocoaSyncer (dns-sync)',
    paths: /^\/v1\/(getClusterInfo|updateClusterInfo|badge|status)?$/,
    ok: (a) => a.status === 200 && (a.body === undefined ? a.text.length > 0 : a.body.statusCode === 200),
    error: (a) => (typeof a.body?.statusCode === 'number' && a.body.statusCode !== 200 ? String(a.body.statusString) : undefined),
  },
  {
    name: 'goim (comet)',
    paths: /^\/(goim\/.+|nodes\/instances)$/,
    ok: (a) => a.status === 200 && a.body?.code === 0 && a.body.message === '',
    error: (a) => (typeof a.body?.code === 'number' && a.body.code !== 0 && typeof a.body.message === 'string' ? a.body.message : undefined),
  },
  {
    name: 'health and agent monitor',
    paths: /^\/(healthz|readyz|v1\/monitor)$/,
    ok: (a) => a.status === 200 && typeof a.body === 'object' && a.body !== null,
    error: (a) => (a.body?.error?.message as string | undefined) ?? (a.status !== 200 ? a.text : undefined),
  },
];

/** Docker Engine on this machine, found without the product: no socket, a socket nobody answers on, or a running Engine. */
function dockerState(): Promise<'absent' | 'dead' | 'running'> {
  return new Promise((resolve) => {
    const req = request({ socketPath: '/var/run/docker.sock', path: '/_ping', timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? 'running' : 'dead');
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ENOENT' ? 'absent' : 'dead'));
    req.end();
  });
}

/** The clear error a route needing Docker must give on this machine, or undefined when it must succeed. */
const DOCKER_ERRORS: Record<'absent' | 'dead', RegExp> = {
  absent: /^Docker is not available on node local: no Docker Engine socket at \/var\/run\/docker\.sock .*, so app-store is not enabled there$/,
  dead: /^app-store on node local is failed: Docker Engine unreachable at \/var\/run\/docker\.sock: /,
};

let proc: Proc;
let controllerUrl = '';
let agentUrl = '';
let token = '';
let dir = '';

before(async () => {
  dir = await tempDir('outpost-readme-');
  const data = join(dir, 'data');
  proc = run(['start', '--data', data, '--port', '0', '--agent-port', '0', '--host', '127.0.0.1']);
  const m = await proc.waitFor(/Dashboard and REST API: (http:\/\/\S+?)\/?\n[\s\S]*Local agent API: +(http:\/\/\S+?)\/v1\/monitor/, 60_000);
  [controllerUrl, agentUrl] = [m[1], m[2]];
  token = (await proc.waitFor(/Admin token \(shown once; store it now\): (\S+)/, 10_000))[1];
});

after(async () => {
  if (proc) await stopProc(proc, 'SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

function rewrite(url: string, ex: CurlExample): string {
  for (const [base, actual] of [['http://127.0.0.1:7070', controllerUrl], ['http://127.0.0.1:7071', agentUrl]]) {
    if (url === base || url.startsWith(base + '/') || url.startsWith(base + '?')) return actual + url.slice(base.length);
  }
  throw new Error(`README.md:${ex.line}: ${url} is neither the controller (http://127.0.0.1:7070) nor the local agent (http://127.0.0.1:7071) of npm start`);
}

/**
 * A fenced `export` sets variables the test does not know yet (one it knows, such as the admin token,
 * is the reader's placeholder); a `node scripts/…` line runs with them in its environment (and
 * JOBS_URL naming this run's controller), and must print its API's successful envelope.
 */
async function runCommand(cmd: CommandExample, vars: Record<string, string>): Promise<void> {
  const where = `README.md:${cmd.line} (${cmd.source})`;
  const words = shellWords(cmd.source, vars);
  if (cmd.kind === 'export') {
    for (const w of words.slice(1)) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(w);
      assert.ok(m, `${where}: export takes NAME=value words`);
      // The reader's placeholder for what the test knows (the admin token, a value from an answer).
      if (!Object.hasOwn(vars, m[1])) vars[m[1]] = m[2];
    }
    return;
  }
  const path = words.find((w) => w.startsWith('/')) ?? '';
  const env = ENVELOPES.find((e) => e.paths.test(new URL(path, 'http://x').pathname));
  assert.ok(env, `${where}: no envelope known for ${path}: add its API to ENVELOPES in test/readme-examples.test.ts`);
  const r = await promisify(execFile)(process.execPath, [join(ROOT, words[1]), ...words.slice(2)], { env: { ...process.env, ...vars, JOBS_URL: controllerUrl }, timeout: 30_000 }).catch((err: { stdout?: string; stderr?: string; message: string }) => assert.fail(`${where}: ${err.message} ${err.stdout ?? ''}`));
  const answer: Answer = { status: 200, text: r.stdout, body: JSON.parse(r.stdout), headers: new Headers() };
  assert.ok(env.ok(answer), `${where}: ${r.stdout}`);
}

test('README.md: every curl example answers with its envelope and succeeds on npm start (or names what the machine lacks)', async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const examples = extractExamples(readme);
  assert.ok(examples.length > 0, 'README.md has curl examples');
  const commands = extractCommands(readme);
  const docker = await dockerState();
  const vars: Record<string, string> = { OUTPOST_ADMIN_TOKEN: token };
  for (const ex of examples) {
    // The scripts and exports written before this curl run first, in reading order.
    while (commands.length && commands[0].line < ex.line) await runCommand(commands.shift()!, vars);
    const where = `README.md:${ex.line} (${ex.source.replace(/\s*\\\n\s*/g, ' ')})`;
    const r = curlRequest(shellWords(ex.source, vars));
    const url = rewrite(r.url, ex);
    const path = new URL(url).pathname;
    const env = ENVELOPES.find((e) => e.paths.test(path));
    assert.ok(env, `${where}: no envelope known for ${path}: add its API to ENVELOPES in test/readme-examples.test.ts`);
    const lacking = env.needs === 'docker' && docker !== 'running' ? DOCKER_ERRORS[docker] : undefined;
    const send = () => http(r.method, url, { raw: r.body, headers: r.headers });
    let answer: Answer;
    if (lacking) {
      answer = await send();
      assert.equal(answer.status, 503, `${where}: ${answer.text}`);
      assert.match(env.error(answer) ?? '', lacking, `${where} on a machine whose Docker is ${docker}: ${answer.text}`);
    } else {
      let last: Answer | undefined;
      answer = await until(
        `${where} to succeed`,
        async () => {
          last = await send();
          return env.ok(last) ? last : undefined;
        },
        30_000,
        250,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}; last answer: HTTP ${last?.status} ${last?.text.slice(0, 500)}`);
      });
    }
    assert.ok(!/\bat .*\.ts:\d+/.test(answer.text), `${where}: no stack trace in an answer`);
    for (const c of ex.captures) vars[c.name] = answerValue(answer.body, c.path);
  }
  for (const cmd of commands) await runCommand(cmd, vars);
});
