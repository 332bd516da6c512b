/**
 * Malformed requests against every endpoint of a real controller and agent (the routes come from
 * their own listings, so a route added later is fuzzed too): malformed JSON, wrong types, oversize
 * and invalid UTF-8 bodies, unicode and empty values, odd path parameters and request targets. No
 * answer is a 500, every refusal is in its API's envelope, both processes keep serving; afterwards
 * every file they wrote under their data dirs is owner-only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { TestController, TestAgent, http, until } from './helpers/cluster.ts';
import { envelopeProblem, listRoutes, type Envelope, type ListedRoute } from './helpers/envelopes.ts';
import { bodies, FIELDS, fillPath, json, param, query, wellFormed, type Body } from './helpers/fuzz-input.ts';
import { rawRequest } from './helpers/raw-http.ts';

/** A small body limit keeps oversized bodies cheap to send. */
const MAX_BODY = 64 * 1024;

let c: TestController;
let a: TestAgent;
let agentToken: string;

before(async () => {
  // The prober has no apps, so no fuzzed request can make a monitor probe anything; app-store has no Docker Engine.
  // dns-sync on dry-run: nothing leaves the machine whatever its routes are sent.
  const plugins = { 'server-stats': { interval: 1, diskInterval: 5 }, prober: { apps: {} }, 'app-store': { socketPath: '/nonexistent/outpost-docker.sock' }, 'dns-sync': { cocoaSecret: 'fuzz-cocoa-secret', providers: { dry: { type: 'dry-run' } }, services: [{ serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'dry' }] } };
  c = await TestController.start({ config: { plugins, maxBodyBytes: MAX_BODY } });
  a = await TestAgent.start(c, { name: 'fuzz-a', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, prober: {}, 'dns-sync': { self: { ISPs: ['default'], address: '192.0.2.1' } } }, config: { maxBodyBytes: MAX_BODY } });
  await until('node up', async () => (await c.node(a.nodeId))?.state === 'up', 20_000);
  agentToken = JSON.parse(await readFile(join(a.dataDir, 'state.json'), 'utf8')).apiToken;
});

after(async () => {
  await a?.stop();
  await c?.stop();
});

test('agent local API: a malformed request target gets 400 in the REST envelope, and the agent keeps serving', async () => {
  for (const target of ['//[', '//', 'http://[::1', '//[::1]:x/healthz']) {
    const r = await rawRequest(a.port, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    assert.equal(r.status, 400, `${target}: ${r.body}`);
    assert.equal(envelopeProblem('rest', 400, JSON.parse(r.body)), undefined, r.body);
    assert.match(JSON.parse(r.body).error.message, /malformed request target/);
  }
  const ok = await rawRequest(a.port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.equal(ok.status, 200);
});

type Listed = ListedRoute & { envelope: Envelope };

interface Server {
  name: string;
  base: string;
  token: string;
  routes: Listed[];
}

async function servers(): Promise<Server[]> {
  const agent = `http://127.0.0.1:${a.port}`;
  return [
    { name: 'controller', base: c.url, token: c.adminToken, routes: await listRoutes(`${c.url}/api/v1/routes`, c.adminToken) },
    { name: 'agent', base: agent, token: agentToken, routes: await listRoutes(`${agent}/v1/routes`, agentToken) },
  ];
}

/** Sends one request to route and fails unless the answer is below 500 (or a 502/503 naming an unavailable node) and every refusal is in the route's envelope. */
async function probe(server: Server, route: Listed, path: string, q: Array<[string, string]>, b: Body, admin: boolean): Promise<void> {
  const qs = new URLSearchParams(q.map(([k, v]): [string, string] => [k, wellFormed(v)])).toString();
  const url = `${server.base}${path}${qs ? `?${qs}` : ''}`;
  const headers: Record<string, string> = {};
  if (admin) headers.authorization = `Bearer ${server.token}`;
  // fetch sends no body with GET; the servers never read one there.
  const send = route.method !== 'GET' && b.raw !== undefined;
  if (send && b.type) headers['content-type'] = b.type;
  const res = await fetch(url, { method: route.method, headers, body: send ? b.raw : undefined, redirect: 'manual' });
  const answer = await res.text();
  const where = `${server.name} ${route.method} ${url.slice(0, 200)} (${b.what}, ${admin ? 'admin' : 'anonymous'})`;
  // 502/503 say a node or a plugin cannot serve (app-store without a Docker Engine); a 500 is a defect.
  assert.ok(res.status < 500 || ((res.status === 502 || res.status === 503) && route.envelope !== 'html'), `${where}: ${res.status} ${answer.slice(0, 300)}`);
  if (res.status < 400) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    parsed = undefined;
  }
  const problem = envelopeProblem(route.envelope, res.status, parsed, res.headers.get('content-type') ?? '');
  assert.equal(problem, undefined, `${where}: ${problem}: ${answer.slice(0, 300)}`);
  assert.doesNotMatch(answer, /\bat .+\.(ts|js):\d+/, `${where}: stack trace in the answer`);
}

async function assertBothServing(): Promise<void> {
  assert.equal((await http('GET', `${c.url}/healthz`)).status, 200);
  assert.equal((await http('GET', `http://127.0.0.1:${a.port}/healthz`)).status, 200);
  assert.equal(c.proc.child.exitCode, null, 'controller still running');
  assert.equal(a.proc.child.exitCode, null, 'agent still running');
}

test('every route of the controller and the agent, fuzzed: no 500, refusals in the route\'s own envelope', async () => {
  const all = await servers();
  const count = all.reduce((n, s) => n + s.routes.length, 0);
  assert.ok(count >= 40, `expected the controller's and agent's routes in the listings, found ${count}`);
  const body = bodies(MAX_BODY);
  // Mostly with the admin token, so that requests get past the auth check to the handlers.
  const anonymous = fc.integer({ min: 0, max: 4 }).map((n) => n === 0);
  for (const server of all) {
    for (const route of server.routes) {
      await fc.assert(
        fc.asyncProperty(fc.array(param, { minLength: 2, maxLength: 2 }), query, body, anonymous, async (params, q, b, anon) => {
          await probe(server, route, fillPath(route.path, params), q, b, !anon);
        }),
        // Bodies are where most input goes: more runs for routes that read one. The whole test stays well under a minute.
        { numRuns: route.method === 'GET' ? 20 : 50 },
      );
    }
  }
  await assertBothServing();
});

test('every known field, alone, with each wrong type on every route that reads a body: no 500', async () => {
  const wrongTypes = [null, {}, [], true, 1.5];
  for (const server of await servers()) {
    for (const route of server.routes.filter((r) => r.method !== 'GET')) {
      const path = fillPath(route.path, []);
      for (const field of FIELDS) {
        for (const v of wrongTypes) await probe(server, route, path, [], json({ [field]: v }, `{${field}: ${JSON.stringify(v).slice(0, 20)}}`), true);
      }
    }
  }
  await assertBothServing();
});

test('every file the controller and the agent wrote under their data dirs is owner-only (0600, directories 0700)', async () => {
  // Writes the fuzzing may not have caused: an event in the event log, a join token.
  assert.equal((await c.api('POST', '/api/v1/events/test', { message: 'modes' })).status, 202);
  await c.joinToken();
  const wrong: string[] = [];
  let files = 0;
  const walk = async (dir: string): Promise<void> => {
    const mode = (await stat(dir)).mode & 0o777;
    if (mode !== 0o700) wrong.push(`${dir}/ ${mode.toString(8)}`);
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        files++;
        const m = (await stat(p)).mode & 0o777;
        if (m !== 0o600) wrong.push(`${p} ${m.toString(8)}`);
      }
    }
  };
  await walk(c.dataDir);
  await walk(a.dataDir);
  assert.deepEqual(wrong, []);
  assert.ok(files >= 10, `expected the stores, journals and histories of both processes, found ${files} files`);
});
