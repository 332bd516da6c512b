/**
 * Malformed requests against every endpoint of a real controller and agent: nothing answers 5xx,
 * every refusal is in its API's envelope.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, TestAgent, until } from './helpers/cluster.ts';
import { envelopeProblem } from './helpers/envelopes.ts';
import { rawRequest } from './helpers/raw-http.ts';

let c: TestController;
let a: TestAgent;

before(async () => {
  c = await TestController.start();
  a = await TestAgent.start(c, { name: 'fuzz-a' });
  await until('node up', async () => (await c.node(a.nodeId))?.state === 'up', 20_000);
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
