/**
 * Routes whose body is an opaque message (goim's pushes): `rawBody` routes get the bytes as sent
 * (binary, or text that looks like broken JSON) and every value of a repeated query parameter, on
 * both hosts' servers and through a plugin's route table; other routes keep decoding form and JSON.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpServer } from '../runtime/http-server.ts';
import { RouteTable } from '../runtime/route-table.ts';
import { LocalApi } from '../agent/local-api.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { restError, type Route } from '../plugins/sdk/http.ts';

const log = createLog('test', 'fatal');
const echo = (path: string, rawBody: boolean): Route => ({
  method: 'POST',
  path,
  auth: 'none',
  error: restError,
  rawBody,
  handler: (req) => ({ json: { hex: req.raw.toString('hex'), queryAll: req.queryAll, fields: req.fields, json: req.json ?? null } }),
});

let controller: HttpServer;
let agent: LocalApi;
const base: Record<'controller' | 'agent', string> = { controller: '', agent: '' };

before(async () => {
  controller = new HttpServer({ log, isAdmin: () => false });
  // Mounted through a route table, as plugins mount them: the flag must survive its wrapping.
  new RouteTable(controller).mount('p', [echo('/raw', true), echo('/fields', false)]);
  controller.finish(() => restError(404, 'no'));
  base.controller = `http://127.0.0.1:${await controller.listen('127.0.0.1', 0)}`;
  agent = new LocalApi({ log, isAdmin: () => false });
  new RouteTable(agent).mount('p', [echo('/raw', true), echo('/fields', false)]);
  base.agent = `http://127.0.0.1:${await agent.listen('127.0.0.1', 0)}`;
});
after(() => {
  controller.close();
  agent.close();
});

for (const host of ['controller', 'agent'] as const) {
  test(`${host}: a rawBody route gets the bytes as sent and repeated query values; nothing is refused as malformed`, async () => {
    const binary = Buffer.from([0, 0xff, 0x7b, 0x80]);
    const r = await fetch(`${base[host]}/raw?keys=a&keys=b%20c&keys=a,d&op=1`, { method: 'POST', body: binary, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 200);
    const got = (await r.json()) as any;
    assert.deepEqual([got.hex, got.queryAll, got.json], ['00ff7b80', { keys: ['a', 'b c', 'a,d'], op: ['1'] }, null]);
    const text = (await (await fetch(`${base[host]}/raw`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).json()) as any;
    assert.equal(Buffer.from(text.hex, 'hex').toString(), '{not json');
    assert.deepEqual(text.queryAll, {});
  });

  test(`${host}: other routes still decode JSON and forms, and refuse malformed JSON in their envelope`, async () => {
    const form = (await (await fetch(`${base[host]}/fields?q=1`, { method: 'POST', body: 'a=1&b=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).json()) as any;
    assert.deepEqual(form.fields, { q: '1', a: '1', b: '2' });
    assert.equal(Buffer.from(form.hex, 'hex').toString(), 'a=1&b=2', 'raw is there for every route');
    const bad = await fetch(`${base[host]}/fields`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as any).error.message, /^malformed JSON body/);
  });
}
