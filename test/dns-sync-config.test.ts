/** dns-sync's config: the sample parses, every mistake names its field, secrets are write-only. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dnsSyncConfig } from '../plugins/dns-sync/config.ts';
import { describeIssues } from '../plugins/sdk/validate.ts';
import { keepStoredSecrets, redactRaw, Secret, secretsIn, withoutSecrets } from '../plugins/sdk/secret.ts';
import { lineRecordName } from '../plugins/dns-sync/lines.ts';
import { ROOT } from './helpers/cluster.ts';

const sample = async () => JSON.parse(await readFile(join(ROOT, 'configs/plugins/dns-sync.json'), 'utf8'));

const problem = (value: unknown) => {
  const r = dnsSyncConfig.safeParse(value);
  assert.equal(r.success, false, 'expected the config to be refused');
  return describeIssues(r.error!);
};

test('the sample config parses, with defaults filled in', async () => {
  const cfg = dnsSyncConfig.parse(await sample());
  assert.equal(cfg.services.length, 2);
  assert.equal(cfg.services[1].probe?.group_id, '1');
  assert.equal(cfg.providers['dry-run'].type, 'dry-run');
  assert.deepEqual(dnsSyncConfig.parse({}), { nodeName: 'outpost', providers: {}, services: [], nodes: {}, upAfter: 30, reconcileInterval: 60, retry: { baseDelay: 2, factor: 2, jitter: 0.2, maxDelay: 120 } });
  // Domains and records are normalised: lower case, no trailing dot.
  const c = dnsSyncConfig.parse({ providers: { p: { type: 'dry-run' } }, services: [{ serviceName: 's', domain: 'Example.TEST.', record: 'WWW', platformProvider: 'p' }] });
  assert.deepEqual([c.services[0].domain, c.services[0].record, c.services[0].ttl], ['example.test', 'www', 60]);
});

test('every mistake names its field', () => {
  const base = { providers: { p: { type: 'dry-run' } } };
  const svc = { serviceName: 'web', domain: 'example.test', record: 'www', platformProvider: 'p' };
  assert.equal(problem({ ...base, services: [{ ...svc, platformProvider: 'nope' }] }), 'services.0.platformProvider: unknown provider "nope" (configured: p)');
  assert.match(problem({ ...base, services: [svc, { ...svc, serviceName: 'other' }] }), /^services\.1\.record: record www of example\.test on p is already managed by service "web"$/);
  assert.match(problem({ ...base, services: [svc, { ...svc, record: 'api' }] }), /^services\.1\.serviceName: duplicate serviceName "web"$/);
  assert.match(problem({ ...base, services: [{ ...svc, domain: 'localhost' }] }), /^services\.0\.domain: domain must be a DNS name/);
  assert.match(problem({ ...base, services: [{ ...svc, record: 'a b' }] }), /^services\.0\.record: record must be "@" or DNS labels/);
  assert.match(problem({ ...base, services: [{ ...svc, ttl: 0 }] }), /^services\.0\.ttl: /);
  assert.match(problem({ ...base, services: [{ ...svc, lines: ['CT', 'Mars'] }] }), /^services\.0\.lines\.1: /);
  assert.match(problem({ nodes: { a: { ISPs: ['CT'], address: '2001:db8::1' } } }), /^nodes\.a\.address: networkType IPV4 needs an IPv4 address, got "2001:db8::1"$/);
  assert.match(problem({ nodes: { a: { ISPs: ['CT'], networkType: 'IPV6', address: '192.0.2.1' } } }), /^nodes\.a\.address: networkType IPV6 needs an IPv6 address/);
  assert.match(problem({ nodes: { a: { ISPs: ['CT'], networkType: 'Both', address: '192.0.2.1' } } }), /^nodes\.a\.address6: networkType Both needs address6/);
  assert.match(problem({ nodes: { a: { ISPs: ['None'], address: '192.0.2.1' } } }), /^nodes\.a\.ISPs\.0: /);
  assert.match(problem({ nodes: { a: { ISPs: [], address: '192.0.2.1' } } }), /^nodes\.a\.ISPs: /);
  assert.match(problem({ providers: { p: { type: 'route53' } } }), /^providers\.p\.type: /);
  assert.match(problem({ providers: { p: { type: 'pdns', url: 'http://127.0.0.1:8081' } } }), /^providers\.p\.apiKey: /);
  assert.match(problem({ providers: { p: { type: 'pdns', url: 'ftp://x', apiKey: 'k' } } }), /^providers\.p\.url: must be an http/);
  assert.match(problem({ providers: { p: { type: 'dry-run', lineName: '{record}-x' } } }), /^providers\.p\.lineName: lineName must contain "\{line\}"$/);
  assert.match(problem({ cocoaSecret: 'short' }), /^cocoaSecret: cocoaSecret must have at least 8 characters$/);
  assert.match(problem({ typo: 1 }), /^\(root\): Unrecognized key: "typo"$/);
});

test('config reads show every secret as ***, and a PUT of that view keeps the stored secrets', async () => {
  const raw = await sample();
  const cfg = dnsSyncConfig.parse(raw);
  const secrets = secretsIn(cfg).map((s) => s.reveal());
  assert.deepEqual(secrets.sort(), ['change-me-access-key-id', 'change-me-access-key-secret', 'change-me-cloudflare-api-token', 'change-me-pdns-api-key', 'change-me-to-a-long-random-cocoa-secret']);
  assert.ok(cfg.cocoaSecret instanceof Secret);
  for (const text of [JSON.stringify(cfg), JSON.stringify(redactRaw(dnsSyncConfig, raw))]) for (const s of secrets) assert.ok(!text.includes(s), `a config view holds ${s}`);
  const shown = redactRaw(dnsSyncConfig, raw) as typeof raw;
  assert.equal(shown.cocoaSecret, '***');
  assert.deepEqual(shown.providers['aliyun'], { ...raw.providers['aliyun'], accessKey: '***', accessSecret: '***' });
  assert.deepEqual({ ...shown, cocoaSecret: raw.cocoaSecret, providers: raw.providers }, raw, 'nothing else changes');
  assert.deepEqual(keepStoredSecrets(dnsSyncConfig, shown, raw), raw);
});

test('withoutSecrets removes raw and percent-encoded secrets', () => {
  const out = withoutSecrets('key=a+b/c&sig=a%2Bb%2Fc and a%252Bb%252Fc', [new Secret('a+b/c')]);
  assert.equal(out, 'key=***&sig=*** and ***');
});

test('line names on providers without ISP lines', () => {
  assert.equal(lineRecordName('{line}.{record}', 'default', 'www', 'example.test'), 'www.example.test');
  assert.equal(lineRecordName('{line}.{record}', 'telecom', 'www', 'example.test'), 'telecom.www.example.test');
  assert.equal(lineRecordName('{record}-{line}', 'edu', 'www', 'example.test'), 'www-edu.example.test');
  assert.equal(lineRecordName('{line}.{record}', 'oversea', '@', 'example.test'), 'oversea.example.test');
  assert.equal(lineRecordName('{line}.{record}', 'default', '@', 'example.test'), 'example.test');
});
