/**
 * The one secret rule: a Secret shows as `***` in JSON, logs, inspect, strings and panels, refuses to
 * be a metric label, and secret() config fields are redacted on reads and kept on PUTs of `***`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { createLog } from '../plugins/sdk/log.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { keyValues, table } from '../plugins/sdk/panel-views.ts';
import { html } from '../plugins/sdk/html.ts';
import { keepStoredSecrets, NoStoredSecret, redactAll, redactRaw, REDACTED, revealed, Secret, secret, secretsIn, secretUrl, withoutSecrets } from '../plugins/sdk/secret.ts';

const S = 'hunter2-very-secret';

test('a Secret is *** in JSON, inspect, String, templates and concatenation; reveal() gives the value', () => {
  const s = new Secret(S);
  assert.equal(s.reveal(), S);
  assert.equal(JSON.stringify({ s, list: [s] }), '{"s":"***","list":["***"]}');
  assert.equal(inspect({ s }), "{ s: *** }");
  assert.equal(String(s), REDACTED);
  assert.equal(`${s}`, REDACTED);
  assert.equal('x' + s, 'x***');
  assert.ok(!inspect(s, { showHidden: true, depth: 5 }).includes(S));
  assert.equal(revealed(s), S);
  assert.equal(revealed('plain'), 'plain');
  assert.equal(revealed(undefined), undefined);
  assert.throws(() => new Secret(42 as unknown as string), /wraps a string/);
});

test('the log shows *** for a Secret at any depth, also in an error message built from it', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const log = createLog('secret-test', 'info', sink);
  const s = new Secret(S);
  log.info({ cfg: { providers: { a: { apiKey: s } } }, list: [s] }, 'configured');
  log.warn({ err: `auth failed with ${s}` }, 'provider');
  log.info({ s }, `message ${s}`);
  await new Promise((r) => setImmediate(r));
  const text = lines.join('');
  assert.equal(lines.length, 3, text);
  assert.ok(!text.includes(S), text);
  assert.equal(JSON.parse(lines[0]).cfg.providers.a.apiKey, '***');
  assert.equal(JSON.parse(lines[1]).err, 'auth failed with ***');
  assert.equal(JSON.parse(lines[2]).msg, 'message ***');
});

test('a metric label refuses a Secret (and anything not a string); plain labels work', () => {
  const m = new MetricsRegistry();
  const g = m.gauge('outpost_test_gauge', 'test');
  const c = m.counter('outpost_test_count', 'test');
  const bad = { key: new Secret(S) } as unknown as Record<string, string>;
  assert.throws(() => g.set(bad, 1), /label "key" of outpost_test_gauge must be a string; a Secret is never a label/);
  assert.throws(() => c.inc(bad), /label "key" of outpost_test_count_total must be a string/);
  assert.throws(() => c.inc({ n: 3 } as unknown as Record<string, string>), /label "n" .* must be a string/);
  g.set({ node: 'a' }, 2);
  assert.match(m.render(), /outpost_test_gauge\{node="a"\} 2/);
  assert.ok(!m.render().includes(S));
});

test('panel helpers render a Secret as ***', () => {
  const s = new Secret(S);
  assert.equal(html`<b>${s}</b>`.value, '<b>***</b>');
  assert.ok(table({ columns: ['k', 'v'], rows: [{ cells: ['key', s] }], empty: '' }).value.includes('>***</td>'));
  assert.ok(!keyValues([['token', s]]).value.includes(S));
});

const provider = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pdns'), url: z.string(), apiKey: secret() }).strict(),
  z.object({ type: z.literal('dry-run') }).strict(),
]);
const schema = z
  .object({
    name: z.string(),
    token: secret(z.string().min(8, 'token must have at least 8 characters')).optional(),
    callers: z.array(z.object({ ip: z.string(), token: secret() })).default([]),
    providers: z.record(z.string(), provider).default({}),
    note: z.string().optional(),
  })
  .strict();

test('secret(): parses a string into a Secret with its rules, passes a Secret through, refuses ***', () => {
  const cfg = schema.parse({ name: 'a', token: 'long-enough', callers: [{ ip: '1', token: 't' }], providers: { p: { type: 'pdns', url: 'u', apiKey: 'k' } } });
  assert.ok(cfg.token instanceof Secret);
  assert.equal(cfg.token.reveal(), 'long-enough');
  const p = cfg.providers.p;
  assert.ok(p.type === 'pdns' && p.apiKey.reveal() === 'k');
  assert.equal(JSON.stringify(cfg), '{"name":"a","token":"***","callers":[{"ip":"1","token":"***"}],"providers":{"p":{"type":"pdns","url":"u","apiKey":"***"}}}');
  assert.deepEqual(schema.parse(cfg), cfg, 'a parsed config parses to itself');
  const short = schema.safeParse({ name: 'a', token: 'short' });
  assert.ok(!short.success && short.error.issues[0].message === 'token must have at least 8 characters');
  const kept = schema.safeParse({ name: 'a', token: '***' });
  assert.ok(!kept.success && /stands for a stored secret, and none is stored/.test(kept.error.issues[0].message));
  assert.ok(!schema.safeParse({ name: 'a', callers: [{ ip: '1', token: '' }] }).success);
});

test('redactRaw: *** at secret() fields only, the rest as stored, no defaults added, invalid configs too', () => {
  const raw = { name: '***?', token: 'long-enough', callers: [{ ip: '1', token: 't' }], providers: { p: { type: 'pdns', url: 'u', apiKey: 'k' }, d: { type: 'dry-run' } }, note: 'token' };
  assert.deepEqual(redactRaw(schema, raw), { name: '***?', token: '***', callers: [{ ip: '1', token: '***' }], providers: { p: { type: 'pdns', url: 'u', apiKey: '***' }, d: { type: 'dry-run' } }, note: 'token' });
  assert.deepEqual(raw.callers[0], { ip: '1', token: 't' }, 'the input is not changed');
  // A config that does not parse is still shown without its secrets.
  assert.deepEqual(redactRaw(schema, { name: 5, token: 'x', extra: 'y' }), { name: 5, token: '***', extra: 'y' });
  assert.deepEqual(redactRaw(schema, 'not an object'), 'not an object');
  assert.deepEqual(redactRaw(z.object({ a: z.string() }), { a: 'b' }), { a: 'b' }, 'a schema without secrets changes nothing');
});

test('keepStoredSecrets: *** at a secret field keeps the stored value; elsewhere it is a value; none stored is an error naming the field', () => {
  const stored = { name: 'a', token: 'long-enough', callers: [{ ip: '1', token: 'caller-1' }, { ip: '2', token: 'caller-2' }], providers: { p: { type: 'pdns', url: 'u', apiKey: 'k' } } };
  const put = { name: '***', token: '***', callers: [{ ip: '1', token: '***' }, { ip: '3', token: 'new' }], providers: { p: { type: 'pdns', url: 'u2', apiKey: '***' } } };
  const merged = keepStoredSecrets(schema, put, stored);
  assert.deepEqual(merged, { name: '***', token: 'long-enough', callers: [{ ip: '1', token: 'caller-1' }, { ip: '3', token: 'new' }], providers: { p: { type: 'pdns', url: 'u2', apiKey: 'k' } } });
  const parsed = schema.parse(merged);
  assert.equal(parsed.token?.reveal(), 'long-enough');
  assert.throws(() => keepStoredSecrets(schema, { name: 'a', providers: { q: { type: 'pdns', url: 'u', apiKey: '***' } } }, stored), (err: Error) => err instanceof NoStoredSecret && err.message === 'providers.q.apiKey: "***" keeps the stored secret, and none is stored');
  assert.throws(() => keepStoredSecrets(schema, { name: 'a', token: '***' }, undefined), NoStoredSecret);
});

test('redactAll: with no schema every scalar is ***', () => {
  assert.deepEqual(redactAll({ apiToken: 'x', region: 'eu', n: 3, list: ['a', null], nested: { ok: true } }), { apiToken: '***', region: '***', n: '***', list: ['***', null], nested: { ok: '***' } });
});

test('matches: constant-time comparison of a presented value; an empty secret or a non-string matches nothing', () => {
  const s = new Secret(S);
  assert.equal(s.matches(S), true);
  assert.equal(s.matches(S + ' '), false);
  assert.equal(s.matches(S.slice(0, -1)), false);
  assert.equal(s.matches(undefined), false);
  assert.equal(s.matches([S]), false);
  assert.equal(new Secret('').matches(''), false);
});

test('secretUrl: user info and every query value masked, host and path shown; reveal() gives the URL', () => {
  const u = secretUrl('https://ops:pw-123@hooks.example:8443/x/y?token=tok-1&page=2&token=tok-2');
  assert.equal(String(u), 'https://***@hooks.example:8443/x/y?token=***&page=***');
  assert.equal(JSON.stringify({ u }), '{"u":"https://***@hooks.example:8443/x/y?token=***&page=***"}');
  assert.equal(u.reveal(), 'https://ops:pw-123@hooks.example:8443/x/y?token=tok-1&page=2&token=tok-2');
  assert.equal(String(secretUrl('http://127.0.0.1:9/plain')), 'http://127.0.0.1:9/plain');
  assert.equal(String(secretUrl('not a url ops:pw')), '(invalid url)');
});

test('secretsIn and withoutSecrets: text quoting a known secret, raw or percent-encoded, loses it', () => {
  const cfg = schema.parse({ name: 'a', token: 'a+b/c=long', callers: [{ ip: '1', token: 'caller-x' }] });
  const found = secretsIn(cfg);
  assert.deepEqual(found.map((x) => x.reveal()).sort(), ['a+b/c=long', 'caller-x']);
  const text = 'sig a+b/c=long url a%2Bb%2Fc%3Dlong twice a%252Bb%252Fc%253Dlong and caller-x.';
  assert.equal(withoutSecrets(text, found), 'sig *** url *** twice *** and ***.');
  assert.equal(withoutSecrets('nothing here', [new Secret('')]), 'nothing here', 'an empty secret replaces nothing');
});
