/**
 * The controller behind a reverse proxy on the same host (issue 9, D14): a small node:http proxy written
 * here forwards to the controller and appends the client's address to X-Forwarded-For, as nginx's
 * $proxy_add_x_forwarded_for does. Clients connect from different loopback addresses (127.0.0.2, .3, ...)
 * so the proxy sees distinct clients; the proxy itself reaches the controller from 127.0.0.1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TestController } from './helpers/cluster.ts';
import { TrustedProxies, isLocalCaller, normalizeIp } from '../plugins/sdk/client-ip.ts';
import { ControllerConfig } from '../controller/config.ts';

const TOKEN2 = 'caller-two-token';
const prober = { apps: { shop: {} }, callers: [{ ip: '127.0.0.2', token: TOKEN2 }], trustLoopback: true };
let trusting: TestController;
let plain: TestController;
const proxies: http.Server[] = [];

/** A reverse proxy to target on 127.0.0.1; returns its port. */
async function startProxy(target: TestController): Promise<number> {
  const server = http.createServer((req, res) => {
    const seen = req.socket.remoteAddress!;
    const xff = req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${seen}` : seen;
    const up = http.request({ host: '127.0.0.1', port: target.port, localAddress: '127.0.0.1', method: req.method, path: req.url, headers: { ...req.headers, 'x-forwarded-for': xff } }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', (err) => res.writeHead(502).end(err.message));
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxies.push(server);
  return (server.address() as AddressInfo).port;
}

/** A form POST from a chosen loopback source address. */
function post(port: number, path: string, form: Record<string, string>, from: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', localAddress: from, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let parsed: any = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // HTML pages (the dashboard sign-in) stay text
        }
        resolve({ status: res.statusCode!, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  trusting = await TestController.start({ config: { trustProxy: ['127.0.0.1'], plugins: { prober } } });
  plain = await TestController.start({ config: { plugins: { prober } } });
});
after(async () => {
  for (const p of proxies) p.close();
  await trusting?.stop();
  await plain?.stop();
});

const monitor = (token?: string) => ({ app_name: 'shop', group_id: '1', record_ids: '1', ips: '127.0.0.1', protocol: 'tcp', port: '9', ...(token ? { token } : {}) });

test('without trustProxy: X-Forwarded-For is ignored, and trustLoopback no longer admits whoever a local proxy relays', async () => {
  const proxy = await startProxy(plain);
  const relayed = await post(proxy, '/operate_monitor', monitor(), '127.0.0.2');
  assert.equal(relayed.body.code, 1004, JSON.stringify(relayed.body));
  assert.match(relayed.body.msg, /caller 127\.0\.0\.1$/);
  const spoofed = await post(plain.port, '/operate_monitor', monitor(), '127.0.0.3', { 'x-forwarded-for': '127.0.0.2' });
  assert.match(spoofed.body.msg, /caller 127\.0\.0\.3$/);
  // A caller on this host talking to the controller itself keeps iplive's exemption.
  assert.equal((await post(plain.port, '/operate_monitor', monitor(), '127.0.0.3')).body.code, 1000);
});

test('with trustProxy: iplive sees the real client behind the proxy; a spoofed header from an untrusted peer is ignored', async () => {
  const proxy = await startProxy(trusting);
  const noToken = await post(proxy, '/operate_monitor', monitor(), '127.0.0.2');
  assert.equal(noToken.body.code, 1004);
  assert.match(noToken.body.msg, /caller 127\.0\.0\.2$/, 'the client, not the proxy; and a proxied client is not a local caller');
  assert.equal((await post(proxy, '/operate_monitor', monitor(TOKEN2), '127.0.0.2')).body.code, 1000, 'its per-caller token matched by its own address');
  // The client's own X-Forwarded-For is kept left of what the proxy appends: the rightmost untrusted hop wins.
  const chained = await post(proxy, '/operate_monitor', monitor(), '127.0.0.3', { 'x-forwarded-for': '127.0.0.2' });
  assert.match(chained.body.msg, /caller 127\.0\.0\.3$/);
  // Straight to the controller from an address that is not a trusted proxy: the header means nothing.
  const direct = await post(trusting.port, '/operate_monitor', monitor(), '127.0.0.4', { 'x-forwarded-for': '127.0.0.2' });
  assert.match(direct.body.msg, /caller 127\.0\.0\.4$/);
  assert.equal(direct.body.code, 1004);
});

test('the dashboard sign-in limiter counts each client behind the proxy on its own only with trustProxy', async () => {
  const signIn = (port: number, token: string, from: string) => post(port, '/login', { token }, from);
  for (const [ctl, separate] of [[trusting, true], [plain, false]] as const) {
    const proxy = await startProxy(ctl);
    for (let i = 0; i < 10; i++) assert.equal((await signIn(proxy, `opa_wrong_${i}`, '127.0.0.5')).status, 401);
    assert.equal((await signIn(proxy, ctl.adminToken, '127.0.0.5')).status, 429, 'the attacker is locked out');
    const user = await signIn(proxy, ctl.adminToken, '127.0.0.6');
    assert.equal(user.status, separate ? 303 : 429, separate ? 'another client signs in' : 'without trustProxy everyone behind the proxy shares one address');
  }
});

test('trustProxy entries are validated, and X-Forwarded-For is read from the right', () => {
  const bad = ControllerConfig.safeParse({ trustProxy: ['10.0.0.0/33'] });
  assert.equal(bad.success, false);
  assert.match(JSON.stringify(bad.error?.issues), /prefix length out of range/);
  assert.match(JSON.stringify(ControllerConfig.safeParse({ trustProxy: ['nginx'] }).error?.issues), /not an IP address or CIDR block/);
  const t = new TrustedProxies(['10.0.0.0/8', '::1']);
  assert.equal(t.clientIp('10.1.1.1', '1.1.1.1, 192.0.2.9, 10.2.2.2'), '192.0.2.9', 'trusted hops skipped, rightmost untrusted wins');
  assert.equal(t.clientIp('10.1.1.1', '10.3.3.3, 10.2.2.2'), '10.3.3.3', 'all trusted: the leftmost');
  assert.equal(t.clientIp('10.1.1.1', 'garbage, 192.0.2.9:4711'), '192.0.2.9', 'ports stripped');
  assert.equal(t.clientIp('10.1.1.1', '192.0.2.9, not-an-ip'), '10.1.1.1', 'a malformed hop next to the proxy: the proxy');
  assert.equal(t.clientIp('::1', '[2001:db8::1]:443'), '2001:db8::1');
  assert.equal(t.clientIp('192.0.2.50', '10.1.1.1'), '192.0.2.50', 'untrusted peer: header ignored');
  assert.equal(new TrustedProxies([]).clientIp('127.0.0.1', '192.0.2.9'), '127.0.0.1');
  assert.equal(normalizeIp('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  assert.equal(normalizeIp('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(isLocalCaller({ ip: '127.0.0.1', peer: '127.0.0.1', headers: {} }), true);
  assert.equal(isLocalCaller({ ip: '127.0.0.1', peer: '127.0.0.1', headers: { 'x-real-ip': '127.0.0.1' } }), false);
  assert.equal(isLocalCaller({ ip: '192.0.2.9', peer: '127.0.0.1', headers: {} }), false);
});
