/**
 * The aliyun provider: RPC signature v1 against Alibaba Cloud's published example, and the Alidns
 * calls (DescribeSubDomainRecords / UpdateDomainRecord / AddDomainRecord / DeleteDomainRecord) against
 * a loopback server that checks every request's parameters and signature.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { canonicalizedQuery, percentEncode, rpcSignature, signedQuery, stringToSign } from '../plugins/dns-sync/providers/aliyun-signature.ts';
import { AliyunProvider, type AlidnsRecord } from '../plugins/dns-sync/providers/aliyun.ts';
import { providerConfig } from '../plugins/dns-sync/config.ts';
import type { LineRef } from '../plugins/dns-sync/providers/provider.ts';
import { startApiServer, type SeenRequest } from './dns-sync-api-server.ts';
import { freePort } from './helpers/cluster.ts';

/**
 * Alibaba Cloud's "API 签名机制 (示例)" (developer.aliyun.com/ask/210168, the same example as the RPC
 * signature pages of alibabacloud.com/help): DescribeRegions with AccessKeyId testid, secret testsecret.
 */
const DOC_PARAMS = {
  TimeStamp: '2016-02-23T12:46:24Z',
  Format: 'XML',
  AccessKeyId: 'testid',
  Action: 'DescribeRegions',
  SignatureMethod: 'HMAC-SHA1',
  SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
  Version: '2014-05-26',
  SignatureVersion: '1.0',
};
const DOC_STRING_TO_SIGN =
  'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26';
const DOC_SIGNATURE = 'CT9X0VtwR86fNWSnsc6v8YGOjuE=';

test('signature v1 reproduces the published example byte for byte', () => {
  assert.equal(stringToSign('GET', DOC_PARAMS), DOC_STRING_TO_SIGN);
  assert.equal(rpcSignature('testsecret', DOC_STRING_TO_SIGN), DOC_SIGNATURE);
  const q = signedQuery('GET', DOC_PARAMS, 'testsecret');
  assert.ok(q.endsWith('&Signature=CT9X0VtwR86fNWSnsc6v8YGOjuE%3D'), q);
  // The published final URL's parameters, in any order, are exactly these.
  const published = new URLSearchParams(
    'SignatureVersion=1.0&Action=DescribeRegions&Format=XML&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&Version=2014-05-26&AccessKeyId=testid&Signature=CT9X0VtwR86fNWSnsc6v8YGOjuE%3D&SignatureMethod=HMAC-SHA1&TimeStamp=2016-02-23T12%3A46%3A24Z',
  );
  assert.deepEqual(Object.fromEntries([...new URLSearchParams(q)].sort()), Object.fromEntries([...published].sort()));
});

test('percent-encoding follows Aliyun\'s rules, not form encoding', () => {
  assert.equal(percentEncode('a b'), 'a%20b');
  assert.equal(percentEncode('*'), '%2A');
  assert.equal(percentEncode('~-_.'), '~-_.');
  assert.equal(percentEncode("!'()"), '%21%27%28%29');
  assert.equal(percentEncode('+/='), '%2B%2F%3D');
  assert.equal(percentEncode('测试'), '%E6%B5%8B%E8%AF%95');
  // Byte order: upper-case names sort before lower-case ones.
  assert.equal(canonicalizedQuery({ b: '1', B: '2', a: ' ' }), 'B=2&a=%20&b=1');
});

const ACCESS_KEY = 'LTAI-test-access-key-id';
const ACCESS_SECRET = 'aliyun-test-secret-0123456789';

/** An Alidns endpoint: checks common parameters and the signature of every request, keeps records. */
async function alidns(records: AlidnsRecord[], opts: { failAction?: string } = {}) {
  const nonces = new Set<string>();
  let nextId = 9000;
  const err = (status: number, Code: string, Message: string) => ({ status, json: { RequestId: 'req-1', Code, Message } });
  const server = await startApiServer((req: SeenRequest) => {
    const p = Object.fromEntries(req.query);
    if (req.method !== 'GET' || req.path !== '/') return err(404, 'InvalidPath', `${req.method} ${req.path}`);
    for (const [k, v] of Object.entries({ Format: 'JSON', Version: '2015-01-09', AccessKeyId: ACCESS_KEY, SignatureMethod: 'HMAC-SHA1', SignatureVersion: '1.0' })) {
      if (p[k] !== v) return err(400, 'MissingParameter', `${k} is ${p[k]}`);
    }
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(p.Timestamp ?? '')) return err(400, 'InvalidTimeStamp.Format', p.Timestamp);
    if (!p.SignatureNonce || nonces.has(p.SignatureNonce)) return err(400, 'SignatureNonceUsed', 'nonce reused');
    nonces.add(p.SignatureNonce);
    const { Signature, ...signed } = p;
    const expected = rpcSignature(ACCESS_SECRET, stringToSign('GET', signed));
    if (Signature !== expected) return err(400, 'SignatureDoesNotMatch', `Specified signature is not matched with our calculation. server string to sign is:${stringToSign('GET', signed)}`);
    if (p.Action === opts.failAction) return err(400, 'DomainRecordDuplicate', 'The DNS record already exists.');
    switch (p.Action) {
      case 'DescribeSubDomainRecords': {
        const size = Number(p.PageSize);
        const page = Number(p.PageNumber);
        const mine = records.filter((r) => `${r.RR === '@' ? '' : `${r.RR}.`}${p.DomainName}` === p.SubDomain);
        return { status: 200, json: { RequestId: 'req', TotalCount: mine.length, PageNumber: page, PageSize: size, DomainRecords: { Record: mine.slice((page - 1) * size, page * size) } } };
      }
      case 'UpdateDomainRecord': {
        const r = records.find((x) => x.RecordId === p.RecordId);
        if (!r) return err(400, 'DomainRecordNotBelongToUser', p.RecordId);
        Object.assign(r, { RR: p.RR, Type: p.Type, Value: p.Value, TTL: Number(p.TTL), Line: p.Line });
        return { status: 200, json: { RequestId: 'req', RecordId: r.RecordId } };
      }
      case 'AddDomainRecord': {
        const r: AlidnsRecord = { RecordId: String(nextId++), RR: p.RR, Type: p.Type, Value: p.Value, TTL: Number(p.TTL), Line: p.Line, Status: 'ENABLE' };
        records.push(r);
        return { status: 200, json: { RequestId: 'req', RecordId: r.RecordId } };
      }
      case 'DeleteDomainRecord': {
        const i = records.findIndex((x) => x.RecordId === p.RecordId);
        records.splice(i, 1);
        return { status: 200, json: { RequestId: 'req', RecordId: p.RecordId } };
      }
    }
    return err(400, 'InvalidAction', p.Action);
  });
  return server;
}

const rec = (RecordId: string, Line: string, Value: string, extra: Partial<AlidnsRecord> = {}): AlidnsRecord => ({ RecordId, RR: 'www', Type: 'A', Value, TTL: 60, Line, Status: 'ENABLE', ...extra });
const ref = (line: LineRef['line'], type: LineRef['type'] = 'A'): LineRef => ({ domain: 'example.test', record: 'www', line, type });

function provider(endpoint: string, deps = {}) {
  return new AliyunProvider('ali', providerConfig.parse({ type: 'aliyun', accessKey: ACCESS_KEY, accessSecret: ACCESS_SECRET, endpoint }) as never, deps);
}

test('DescribeSubDomainRecords is sent exactly as signature v1 wants it', async () => {
  const server = await alidns([]);
  try {
    const p = provider(server.url, { now: () => new Date('2016-02-23T12:46:24.123Z'), nonce: () => '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf' });
    await p.read([ref('default')]);
    const toSign =
      'GET&%2F&AccessKeyId%3DLTAI-test-access-key-id%26Action%3DDescribeSubDomainRecords%26DomainName%3Dexample.test%26Format%3DJSON%26PageNumber%3D1%26PageSize%3D500' +
      '%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26SubDomain%3Dwww.example.test%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2015-01-09';
    const sig = encodeURIComponent(createHmac('sha1', `${ACCESS_SECRET}&`).update(toSign).digest('base64'));
    assert.equal(server.requests.length, 1);
    assert.equal(
      server.requests[0].rawQuery,
      'AccessKeyId=LTAI-test-access-key-id&Action=DescribeSubDomainRecords&DomainName=example.test&Format=JSON&PageNumber=1&PageSize=500&SignatureMethod=HMAC-SHA1' +
        `&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0&SubDomain=www.example.test&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2015-01-09&Signature=${sig}`,
    );
  } finally {
    await server.close();
  }
});

test('reads per line (ENABLE records of that type and line), updates in place, adds a missing line, removes extra values', async () => {
  const records = [
    rec('1', 'default', '192.0.2.1'),
    rec('2', 'telecom', '192.0.2.9'),
    rec('3', 'unicom', '192.0.2.2'),
    rec('4', 'unicom', '192.0.2.3'),
    rec('5', 'mobile', '192.0.2.4', { Status: 'DISABLE' }),
    rec('6', 'default', '2001:db8::1', { Type: 'AAAA' }),
  ];
  const server = await alidns(records);
  try {
    const p = provider(server.url);
    const read = await p.read([ref('default'), ref('telecom'), ref('unicom'), ref('mobile'), ref('default', 'AAAA')]);
    assert.deepEqual(read.get('www.example.test/default/A'), { ok: true, values: ['192.0.2.1'], ttl: 60 });
    assert.deepEqual(read.get('www.example.test/unicom/A'), { ok: true, values: ['192.0.2.2', '192.0.2.3'], ttl: 60 });
    assert.deepEqual(read.get('www.example.test/mobile/A'), { ok: true, values: [], ttl: undefined }, 'a DISABLE record does not answer');
    assert.deepEqual(read.get('www.example.test/default/AAAA'), { ok: true, values: ['2001:db8::1'], ttl: 60 });
    assert.equal(server.requests.length, 1, 'one DescribeSubDomainRecords answers every line of a name');

    server.requests.length = 0;
    const out = await p.write([
      { ref: ref('telecom'), values: ['192.0.2.1'], ttl: 60 },
      { ref: ref('unicom'), values: ['192.0.2.3'], ttl: 60 },
      { ref: ref('edu'), values: ['192.0.2.5'], ttl: 120 },
    ]);
    assert.deepEqual(out, [{ ok: true }, { ok: true }, { ok: true }]);
    const calls = server.requests.map((r) => {
      const { Action, RecordId, RR, Type, Value, TTL, Line, DomainName } = Object.fromEntries(r.query);
      return Object.fromEntries(Object.entries({ Action, RecordId, RR, Type, Value, TTL, Line, DomainName }).filter(([, v]) => v !== undefined));
    });
    assert.deepEqual(calls, [
      { Action: 'DescribeSubDomainRecords', DomainName: 'example.test' },
      { Action: 'UpdateDomainRecord', RecordId: '2', RR: 'www', Type: 'A', Value: '192.0.2.1', TTL: '60', Line: 'telecom' },
      { Action: 'DeleteDomainRecord', RecordId: '3' },
      { Action: 'AddDomainRecord', RR: 'www', Type: 'A', Value: '192.0.2.5', TTL: '120', Line: 'edu', DomainName: 'example.test' },
    ]);
    const after = await p.read([ref('telecom'), ref('unicom'), ref('edu')]);
    assert.deepEqual([...after.values()], [
      { ok: true, values: ['192.0.2.1'], ttl: 60 },
      { ok: true, values: ['192.0.2.3'], ttl: 60 },
      { ok: true, values: ['192.0.2.5'], ttl: 120 },
    ]);
  } finally {
    await server.close();
  }
});

test('an apex record is RR "@"; pages are followed', async () => {
  const records = Array.from({ length: 501 }, (_, i) => rec(String(i), i === 500 ? 'oversea' : 'default', `198.51.100.${i % 250}`, { RR: '@', Type: i === 500 ? 'A' : 'TXT' }));
  const server = await alidns(records);
  try {
    const p = provider(server.url);
    const read = await p.read([{ domain: 'example.test', record: '@', line: 'oversea', type: 'A' }]);
    assert.deepEqual(read.get('example.test/oversea/A'), { ok: true, values: ['198.51.100.0'], ttl: 60 });
    assert.deepEqual(server.requests.map((r) => [r.query.get('SubDomain'), r.query.get('PageNumber')]), [['example.test', '1'], ['example.test', '2']]);
  } finally {
    await server.close();
  }
});

test('errors name the provider, the action and Alidns\' code, and never hold the AccessKey or its secret', async () => {
  const server = await alidns([rec('2', 'telecom', '192.0.2.9')], { failAction: 'UpdateDomainRecord' });
  try {
    const out = await provider(server.url).write([{ ref: ref('telecom'), values: ['192.0.2.1'], ttl: 60 }]);
    assert.equal(out[0].ok, false);
    const msg = (out[0] as { error: string }).error;
    assert.match(msg, /^provider "ali" \(aliyun\): UpdateDomainRecord: HTTP 400 DomainRecordDuplicate: The DNS record already exists\. \(RequestId req-1\)$/);

    // A wrong secret: Alidns echoes the string to sign, AccessKey ID included.
    const wrong = new AliyunProvider('ali', providerConfig.parse({ type: 'aliyun', accessKey: ACCESS_KEY, accessSecret: 'not-the-secret-0000', endpoint: server.url }) as never);
    const read = await wrong.read([ref('telecom')]);
    const err = read.get('www.example.test/telecom/A') as { ok: false; error: string };
    assert.equal(err.ok, false);
    assert.match(err.error, /provider "ali" \(aliyun\): DescribeSubDomainRecords: HTTP 400 SignatureDoesNotMatch/);
    assert.match(err.error, /AccessKeyId%3D\*\*\*%26/, 'the echoed AccessKey ID is scrubbed');
    for (const secret of [ACCESS_KEY, encodeURIComponent(ACCESS_KEY), ACCESS_SECRET, 'not-the-secret-0000']) assert.ok(!err.error.includes(secret), `error holds ${secret}: ${err.error}`);
  } finally {
    await server.close();
  }
});

test('an endpoint nobody listens on: the error names the provider and the address, within the timeout', async () => {
  const port = await freePort();
  const read = await provider(`http://127.0.0.1:${port}`).read([ref('default')]);
  const err = read.get('www.example.test/default/A') as { ok: false; error: string };
  assert.equal(err.error, `provider "ali" (aliyun): DescribeSubDomainRecords: http://127.0.0.1:${port} unreachable (connect ECONNREFUSED 127.0.0.1:${port})`);
});
