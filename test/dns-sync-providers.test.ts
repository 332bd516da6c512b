/**
 * The pdns and cloudflare providers against loopback servers that check each request exactly
 * (method, path, query, auth header, body) and keep the records the way the real API would.
 * (The pdns provider also runs against a real PowerDNS in test/e2e/dns-sync-pdns.e2e.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { providerConfig } from '../plugins/dns-sync/config.ts';
import { PdnsProvider } from '../plugins/dns-sync/providers/pdns.ts';
import { CloudflareProvider, type CfRecord } from '../plugins/dns-sync/providers/cloudflare.ts';
import { DryRunProvider } from '../plugins/dns-sync/providers/dry-run.ts';
import type { LineRef } from '../plugins/dns-sync/providers/provider.ts';
import { startApiServer, pdnsApi, PDNS_KEY, type SeenRequest } from './dns-sync-api-server.ts';

const ref = (line: LineRef['line'], type: LineRef['type'] = 'A', record = 'www'): LineRef => ({ domain: 'example.test', record, line, type });

const pdns = (url: string, extra: Record<string, unknown> = {}) => new PdnsProvider('pdns-main', providerConfig.parse({ type: 'pdns', url, apiKey: PDNS_KEY, ...extra }) as never);

test('pdns: one GET of the zone answers every line; non-native lines live at {line}.{record}', async () => {
  const server = await pdnsApi([
    { name: 'www.example.test.', type: 'A', ttl: 60, records: [{ content: '192.0.2.1', disabled: false }, { content: '192.0.2.7', disabled: true }] },
    { name: 'telecom.www.example.test.', type: 'A', ttl: 300, records: [{ content: '192.0.2.2', disabled: false }] },
    { name: 'www.example.test.', type: 'AAAA', ttl: 60, records: [{ content: '2001:db8::1', disabled: false }] },
  ]);
  try {
    const p = pdns(`${server.url}/`);
    const read = await p.read([ref('default'), ref('telecom'), ref('unicom'), ref('default', 'AAAA')]);
    assert.deepEqual(Object.fromEntries(read), {
      'www.example.test/default/A': { ok: true, values: ['192.0.2.1'], ttl: 60 },
      'www.example.test/telecom/A': { ok: true, values: ['192.0.2.2'], ttl: 300 },
      'www.example.test/unicom/A': { ok: true, values: [] },
      'www.example.test/default/AAAA': { ok: true, values: ['2001:db8::1'], ttl: 60 },
    });
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0].method, 'GET');
    assert.equal(server.requests[0].headers['x-api-key'], PDNS_KEY);
  } finally {
    await server.close();
  }
});

test('pdns: the writes of one zone go in one PATCH with REPLACE rrsets, exactly', async () => {
  const server = await pdnsApi([]);
  try {
    const p = pdns(server.url, { lineName: 'isp-{line}.{record}' });
    const out = await p.write([
      { ref: ref('default'), values: ['192.0.2.1'], ttl: 60 },
      { ref: ref('mobile'), values: ['192.0.2.4'], ttl: 60 },
      { ref: ref('edu', 'A', '@'), values: ['192.0.2.5'], ttl: 30 },
    ]);
    assert.deepEqual(out, [{ ok: true }, { ok: true }, { ok: true }]);
    assert.equal(server.requests.length, 1);
    const req = server.requests[0];
    assert.equal(req.method, 'PATCH');
    assert.equal(req.path, '/api/v1/servers/localhost/zones/example.test.');
    assert.equal(req.body, JSON.stringify({
      rrsets: [
        { name: 'www.example.test.', type: 'A', ttl: 60, changetype: 'REPLACE', records: [{ content: '192.0.2.1', disabled: false }] },
        { name: 'isp-mobile.www.example.test.', type: 'A', ttl: 60, changetype: 'REPLACE', records: [{ content: '192.0.2.4', disabled: false }] },
        { name: 'isp-edu.example.test.', type: 'A', ttl: 30, changetype: 'REPLACE', records: [{ content: '192.0.2.5', disabled: false }] },
      ],
    }));
  } finally {
    await server.close();
  }
});

test('pdns: a rejected batch is written line by line so only the bad line fails, with PowerDNS\' reason', async () => {
  const server = await pdnsApi([]);
  try {
    const out = await pdns(server.url).write([
      { ref: ref('default'), values: ['192.0.2.1'], ttl: 60 },
      { ref: ref('telecom'), values: ['not-an-ip'], ttl: 60 },
    ]);
    assert.deepEqual(out[0], { ok: true });
    assert.equal(out[1].ok, false);
    assert.match((out[1] as { error: string }).error, /^provider "pdns-main" \(pdns\): PATCH zone example\.test\. \(telecom\.www\.example\.test\. A\): HTTP 422 Record telecom\.www\.example\.test\.\/A 'not-an-ip': .*unable to parse IP address/);
    assert.deepEqual(server.requests.map((r) => r.json.rrsets.length), [2, 1, 1]);
  } finally {
    await server.close();
  }
});

test('pdns: a wrong key or a missing zone is named, the key never appears', async () => {
  const server = await pdnsApi([]);
  try {
    const wrong = new PdnsProvider('pdns-main', providerConfig.parse({ type: 'pdns', url: server.url, apiKey: 'wrong-key-abcdef' }) as never);
    const r = (await wrong.read([ref('default')])).get('www.example.test/default/A') as { ok: false; error: string };
    assert.equal(r.error, 'provider "pdns-main" (pdns): GET zone example.test.: HTTP 401 Unauthorized (wrong apiKey?)');
    const other = await pdns(server.url, { serverId: 'other' }).read([ref('default')]);
    assert.match((other.get('www.example.test/default/A') as { error: string }).error, /HTTP 404 Not Found \(does zone example\.test\. exist on server "other"\?\)$/);
  } finally {
    await server.close();
  }
});

test('config refuses a provider URL carrying a user and password', () => {
  const r = providerConfig.safeParse({ type: 'pdns', url: 'http://admin:hunter22@127.0.0.1:8081', apiKey: 'k' });
  assert.equal(r.success, false);
  assert.match(JSON.stringify(r.error!.issues), /must not carry a user or password/);
});

const CF_TOKEN = 'cf-test-token-0123456789';

/** Cloudflare v4: zones lookup, dns_records list (paged) / patch / create / delete, Bearer token. */
async function cloudflareApi(records: CfRecord[], perPageSeen: number[] = []) {
  let next = 100;
  const ok = (result: unknown, result_info?: unknown) => ({ status: 200, json: { success: true, errors: [], messages: [], result, ...(result_info ? { result_info } : {}) } });
  return startApiServer((req: SeenRequest) => {
    if (req.headers.authorization !== `Bearer ${CF_TOKEN}`) return { status: 403, json: { success: false, errors: [{ code: 10000, message: 'Authentication error' }], messages: [], result: null } };
    if (req.method === 'GET' && req.path === '/client/v4/zones') return ok(req.query.get('name') === 'example.test' ? [{ id: 'zone123', name: 'example.test' }] : []);
    const m = /^\/client\/v4\/zones\/zone123\/dns_records(?:\/(\w+))?$/.exec(req.path);
    if (!m) return { status: 404, json: { success: false, errors: [{ code: 7003, message: 'Could not route' }], result: null } };
    if (req.method === 'GET') {
      const perPage = Number(req.query.get('per_page'));
      const page = Number(req.query.get('page'));
      perPageSeen.push(perPage);
      const mine = records.filter((r) => r.name === req.query.get('name'));
      return ok(mine.slice((page - 1) * perPage, page * perPage), { page, per_page: perPage, total_pages: Math.max(1, Math.ceil(mine.length / perPage)), total_count: mine.length });
    }
    if (req.method === 'POST') {
      const r = { id: `r${next++}`, ...req.json };
      records.push(r);
      return ok(r);
    }
    const i = records.findIndex((r) => r.id === m[1]);
    if (i < 0) return { status: 404, json: { success: false, errors: [{ code: 81044, message: 'Record does not exist.' }], result: null } };
    if (req.method === 'PATCH') {
      Object.assign(records[i], req.json);
      return ok(records[i]);
    }
    if (req.method === 'DELETE') return ok({ id: records.splice(i, 1)[0].id });
    return { status: 405, json: { success: false, errors: [{ code: 10405, message: 'Method not allowed' }], result: null } };
  });
}

const cloudflare = (url: string, extra: Record<string, unknown> = {}) => new CloudflareProvider('cf', providerConfig.parse({ type: 'cloudflare', token: CF_TOKEN, endpoint: `${url}/client/v4`, ...extra }) as never);

test('cloudflare: the zone is looked up once, records listed by name (all pages), lines at {line}.{record}', async () => {
  const records: CfRecord[] = [
    ...Array.from({ length: 101 }, (_, i) => ({ id: `t${i}`, type: 'TXT', name: 'www.example.test', content: `t${i}`, ttl: 1 })),
    { id: 'a1', type: 'A', name: 'www.example.test', content: '192.0.2.1', ttl: 60 },
    { id: 'a2', type: 'A', name: 'unicom.www.example.test', content: '192.0.2.2', ttl: 120 },
  ];
  const server = await cloudflareApi(records);
  try {
    const p = cloudflare(server.url);
    const read = await p.read([ref('default'), ref('unicom'), ref('default', 'AAAA')]);
    assert.deepEqual(Object.fromEntries(read), {
      'www.example.test/default/A': { ok: true, values: ['192.0.2.1'], ttl: 60 },
      'www.example.test/default/AAAA': { ok: true, values: [], ttl: undefined },
      'www.example.test/unicom/A': { ok: true, values: ['192.0.2.2'], ttl: 120 },
    });
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.path}?${r.rawQuery}`).sort(), [
      'GET /client/v4/zones/zone123/dns_records?name=unicom.www.example.test&per_page=100&page=1',
      'GET /client/v4/zones/zone123/dns_records?name=www.example.test&per_page=100&page=1',
      'GET /client/v4/zones/zone123/dns_records?name=www.example.test&per_page=100&page=2',
      'GET /client/v4/zones?name=example.test',
    ]);
  } finally {
    await server.close();
  }
});

test('cloudflare: patch in place, create unproxied when missing, delete extra values; configured zone ids skip the lookup', async () => {
  const records: CfRecord[] = [
    { id: 'a1', type: 'A', name: 'www.example.test', content: '192.0.2.1', ttl: 60 },
    { id: 'a2', type: 'A', name: 'www.example.test', content: '192.0.2.2', ttl: 60 },
    { id: 'a3', type: 'A', name: 'telecom.www.example.test', content: '192.0.2.9', ttl: 60 },
  ];
  const server = await cloudflareApi(records);
  try {
    const p = cloudflare(server.url, { zoneIds: { 'example.test': 'zone123' } });
    const out = await p.write([
      { ref: ref('default'), values: ['192.0.2.2'], ttl: 60 },
      { ref: ref('telecom'), values: ['192.0.2.3'], ttl: 60 },
      { ref: ref('oversea', 'AAAA'), values: ['2001:db8::5'], ttl: 300 },
    ]);
    assert.deepEqual(out, [{ ok: true }, { ok: true }, { ok: true }]);
    const edits = server.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path.replace('/client/v4/zones/zone123/dns_records', '')} ${r.body}`);
    assert.deepEqual(edits.sort(), [
      'DELETE /a1 ',
      'PATCH /a3 {"content":"192.0.2.3","ttl":60}',
      'POST  {"type":"AAAA","name":"oversea.www.example.test","content":"2001:db8::5","ttl":300,"proxied":false}',
    ]);
    assert.ok(!server.requests.some((r) => r.path === '/client/v4/zones'), 'no zone lookup with zoneIds');
    assert.deepEqual(records.map((r) => `${r.name} ${r.type} ${r.content}`).sort(), ['oversea.www.example.test AAAA 2001:db8::5', 'telecom.www.example.test A 192.0.2.3', 'www.example.test A 192.0.2.2']);
  } finally {
    await server.close();
  }
});

test('cloudflare: API errors carry Cloudflare\'s code and message, never the token', async () => {
  const server = await cloudflareApi([]);
  try {
    const bad = new CloudflareProvider('cf', providerConfig.parse({ type: 'cloudflare', token: 'wrong-token-0000', endpoint: `${server.url}/client/v4` }) as never);
    const r = (await bad.read([ref('default')])).get('www.example.test/default/A') as { ok: false; error: string };
    assert.equal(r.error, 'provider "cf" (cloudflare): find zone example.test: HTTP 403 10000 Authentication error');
    const missing = await cloudflare(server.url).read([{ domain: 'other.test', record: 'www', line: 'default', type: 'A' }]);
    assert.equal((missing.get('www.other.test/default/A') as { error: string }).error, 'provider "cf" (cloudflare): find zone other.test: no such zone for this token (set zoneIds to name it)');
    assert.ok(!JSON.stringify([...missing]).includes(CF_TOKEN));
  } finally {
    await server.close();
  }
});

test('dry-run: records what it would write and answers it back', async () => {
  let now = 1000;
  const p = new DryRunProvider('dry', providerConfig.parse({ type: 'dry-run' }) as never, () => now);
  assert.deepEqual((await p.read([ref('telecom')])).get('www.example.test/telecom/A'), { ok: true, values: [] });
  await p.write([{ ref: ref('telecom'), values: ['192.0.2.1'], ttl: 60 }]);
  now = 2000;
  await p.write([{ ref: ref('telecom'), values: ['192.0.2.2'], ttl: 60 }]);
  assert.deepEqual((await p.read([ref('telecom')])).get('www.example.test/telecom/A'), { ok: true, values: ['192.0.2.2'], ttl: 60 });
  assert.deepEqual(p.records(), [{ name: 'telecom.www.example.test', ref: ref('telecom'), values: ['192.0.2.2'], ttl: 60, writtenAt: 2000, writes: 2 }]);
});
