/**
 * Dashboard actions at the HTTP level, as the page script sends them: session cookie plus the
 * session's CSRF token in x-outpost-csrf. Refused without the token, with a wrong or another
 * session's token, and from another origin; each core and plugin action works with it; no page or
 * fragment ever carries a secret, including the ones the actions just created.
 * The same actions clicked in Chromium: test/e2e/dashboard.e2e.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, TestAgent, TestController, http, until } from './helpers/cluster.ts';
import { Receiver } from './helpers/receiver.ts';
import { browser, csrfOf } from './helpers/browser.ts';

const CALLBACK_SECRET = 'cbsecret-dashboard-actions-41';
const CALLER_TOKEN = 'callertoken-dashboard-actions-42';
const NO_SOCKET = '/nonexistent/outpost-docker.sock';

describe('dashboard actions over HTTP', () => {
  let c: TestController;
  let a: TestAgent;
  let rx: Receiver;
  let b: ReturnType<typeof browser>;
  let cookie = '';
  let csrf = '';
  /** Secrets created during the run; none may appear in a rendered page. */
  const secrets: string[] = [CALLBACK_SECRET, CALLER_TOKEN];

  /** A request as actions.js sends it. */
  const act = (method: string, path: string, json?: unknown, headers: Record<string, string> = {}) => b.go(method, path, { cookie, json, headers: { origin: c.url, 'x-outpost-csrf': csrf, ...headers } });
  const body = (r: { text: string }) => JSON.parse(r.text);
  const page = async () => {
    const r = await b.go('GET', '/', { cookie });
    assert.equal(r.status, 200);
    return r.text;
  };

  before(async () => {
    rx = await Receiver.start();
    const appStore = { catalogDirs: [join(ROOT, 'configs/apps')], socketPath: NO_SOCKET };
    c = await TestController.start({
      config: {
        webhooks: { baseDelayMs: 50, maxDelayMs: 200, timeoutMs: 5_000, maxAgeMs: 1_500 },
        plugins: { 'server-stats': { interval: 1 }, prober: { apps: { shop: { callbackSecret: CALLBACK_SECRET } }, callers: [{ ip: '*', token: CALLER_TOKEN }], minInterval: 5 }, 'app-store': appStore },
      },
    });
    secrets.push(c.adminToken);
    a = await TestAgent.start(c, { name: 'edge-act', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, 'app-store': appStore } });
    await until('node up', async () => (await c.node(a.nodeId))?.state === 'up', 20_000);
    b = browser(c.url);
    cookie = await b.signIn(c.adminToken);
    csrf = csrfOf(await page());
  });

  after(async () => {
    await a?.stop();
    await c?.stop();
    await rx?.close();
  });

  test('state-changing requests with the session need its CSRF token and our origin; reads and bearer clients do not', async () => {
    const tokensBefore = (await c.api('GET', '/api/v1/tokens')).body.tokens.length;
    const missing = await b.go('POST', '/api/v1/tokens', { cookie, json: { ttl: '1h' }, headers: { origin: c.url } });
    assert.equal(missing.status, 403);
    assert.match(body(missing).error.message, /^CSRF token missing/);
    const wrong = await act('POST', '/api/v1/tokens', { ttl: '1h' }, { 'x-outpost-csrf': `${csrf.slice(0, -2)}xx` });
    assert.equal(wrong.status, 403);
    assert.match(body(wrong).error.message, /CSRF token does not match/);
    const cross = await act('POST', '/api/v1/tokens', { ttl: '1h' }, { origin: 'http://evil.example' });
    assert.equal(cross.status, 403);
    assert.match(body(cross).error.message, /cross-origin request refused/);
    const crossFetch = await act('DELETE', `/api/v1/nodes/${a.nodeId}`, undefined, { 'sec-fetch-site': 'same-site' });
    assert.equal(crossFetch.status, 403);

    // A second session's token is no good for the first session: the token is per session.
    const other = await b.signIn(c.adminToken);
    const otherCsrf = csrfOf((await b.go('GET', '/', { cookie: other })).text);
    assert.notEqual(otherCsrf, csrf);
    assert.equal((await act('POST', '/api/v1/tokens', { ttl: '1h' }, { 'x-outpost-csrf': otherCsrf })).status, 403);

    // Plugin routes, seed or native, are guarded the same way.
    const monitor = await b.go('POST', '/api/v1/prober/monitors', { cookie, json: { app_name: 'shop', group_id: '5', record_ids: '1', ips: '127.0.0.1' }, headers: { origin: c.url } });
    assert.equal(monitor.status, 403);
    const install = await b.go('POST', '/installApp', { cookie, json: { appName: 'nginx' }, headers: { origin: c.url } });
    assert.equal(install.status, 403);
    assert.equal(body(install).code, '0', 'the seed route answers in its own envelope');
    assert.match(body(install).message, /CSRF token missing/);

    assert.equal((await c.api('GET', '/api/v1/tokens')).body.tokens.length, tokensBefore, 'no refused request created anything');
    assert.equal((await c.node(a.nodeId))?.name, 'edge-act', 'no refused request deleted anything');
    assert.equal((await c.api('GET', '/api/v1/prober/groups')).body.groups.length, 0);

    assert.equal((await b.go('GET', '/api/v1/nodes', { cookie })).status, 200, 'reads need no CSRF token');
    assert.equal((await c.api('POST', '/api/v1/events/test', { message: 'bearer' })).status, 202, 'bearer clients need no CSRF token');
    assert.equal((await b.go('POST', '/api/v1/tokens', { json: { ttl: '1h' }, headers: { origin: c.url, 'x-outpost-csrf': csrf } })).status, 401, 'a CSRF token is no credential by itself');
  });

  test('join token: created with the session, usable to enroll, listed without its secret, revocable', async () => {
    const home = await page();
    assert.match(home, /<form id="node-join-token" class="op-form" method="post" action="\/api\/v1\/tokens" data-op data-keep data-method="POST" data-result="once"/);
    assert.match(home, /install-agent\.sh --controller \{controller\} --token \{token\}/, 'the install line template is in the form');
    const created = await act('POST', '/api/v1/tokens', { ttl: '1h', uses: '2', labels: 'zone=lab' });
    assert.equal(created.status, 201, created.text);
    const { token, id } = body(created);
    secrets.push(token);
    const enrolled = await http('POST', `${c.url}/api/v1/enroll`, { body: { token, name: 'joined-by-dashboard' } });
    assert.equal(enrolled.status, 201, enrolled.text);
    const listed = await until('token listed', async () => ((await page()).includes(`data-token="${id}"`) ? page() : undefined));
    assert.match(listed, new RegExp(`action="/api/v1/tokens/${id}" data-op data-keep data-method="DELETE" data-confirm="Revoke join token ${id}\\?`));
    const revoked = await act('DELETE', `/api/v1/tokens/${id}`);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal((await http('POST', `${c.url}/api/v1/enroll`, { body: { token, name: 'too-late' } })).status, 401);
    assert.ok(!(await page()).includes(`data-token="${id}"`), 'a revoked token leaves the list');
    secrets.push(body(enrolled).credential);
  });

  test('delete a node: the button asks first, the session deletes it', async () => {
    const id = (await c.api('GET', '/api/v1/nodes')).body.nodes.find((n: { name: string }) => n.name === 'joined-by-dashboard').id;
    const home = await page();
    assert.match(home, new RegExp(`action="/api/v1/nodes/${id}" data-op data-keep data-method="DELETE" data-confirm="Delete node joined-by-dashboard\\?`));
    assert.match(home, /aria-label="Delete node joined-by-dashboard"/);
    const r = await act('DELETE', `/api/v1/nodes/${id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(body(r).deleted, id);
    assert.equal((await c.api('GET', `/api/v1/nodes/${id}`)).status, 404);
    assert.ok(!(await page()).includes('data-node="joined-by-dashboard"'));
  });

  test('webhooks: add (secret in the answer only), test event reaches it, a dead delivery is retried, delete', async () => {
    const home = await page();
    assert.match(home, /<form id="webhook-add"[^>]* action="\/api\/v1\/webhooks"[^>]* data-result="once"/);
    assert.match(home, /<input type="checkbox" id="webhook-add-events-\d+" name="events" value="test.ping">/);
    const added = await act('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'], description: 'from the dashboard' });
    assert.equal(added.status, 201, added.text);
    const sub = body(added);
    assert.match(sub.secret, /^[A-Za-z0-9_-]{32}$/, 'the generated secret is in the answer, once');
    secrets.push(sub.secret);

    const sent = await act('POST', '/api/v1/events/test', { message: 'hello from the dashboard' });
    assert.equal(sent.status, 202, sent.text);
    const first = await rx.waitFor('test event delivered', (r) => r.accepted().find((x) => x.json?.data?.message === 'hello from the dashboard'));
    assert.equal(first.event, 'test.ping');

    // The receiver fails until the delivery is dead (max age 1.5 s), then recovers; Retry delivers it.
    rx.failNext(Infinity);
    assert.equal((await act('POST', '/api/v1/events/test', { message: 'will die' })).status, 202);
    const dead = await until('delivery dead', async () => {
      const ds = (await c.api('GET', `/api/v1/deliveries?state=dead&subscription=${sub.id}`)).body.deliveries;
      return ds.length ? ds[0] : undefined;
    }, 20_000);
    rx.failNext(0);
    assert.match(await page(), new RegExp(`action="/api/v1/deliveries/${dead.id}/retry" data-op`), 'a dead delivery has a Retry button');
    const retried = await act('POST', `/api/v1/deliveries/${dead.id}/retry`);
    assert.equal(retried.status, 200, retried.text);
    // Back in its lane at once: a quick receiver may have accepted it before the answer was written.
    assert.match(body(retried).delivery.state, /^(pending|delivered)$/);
    const again = await rx.waitFor('retried delivery accepted', (r) => r.accepted().find((x) => x.id === dead.id));
    assert.equal(again.json.data.message, 'will die');

    const removed = await act('DELETE', `/api/v1/webhooks/${sub.id}`);
    assert.equal(removed.status, 200, removed.text);
    assert.equal((await c.api('GET', '/api/v1/webhooks')).body.webhooks.length, 0);
  });

  test('prober panel: add a monitor and stop it through the admin routes; errors in the REST envelope', async () => {
    const home = await page();
    assert.match(home, /<form id="prober-add-monitor"[^>]* action="\/api\/v1\/prober\/monitors"/);
    assert.match(home, /<select id="prober-add-monitor-app_name" name="app_name"><option value="shop" selected>shop<\/option><\/select>/);
    const added = await act('POST', '/api/v1/prober/monitors', { app_name: 'shop', group_id: '7', record_ids: '71:72', ips: '127.0.0.1:127.0.0.2', protocol: 'tcp', port: String(c.port), level: '4', interval: '10', timeout: '2', retry_count: '0' });
    assert.equal(added.status, 201, added.text);
    assert.equal(body(added).monitor.group_id, 7);
    assert.deepEqual(body(added).group.records.map((r: { record_id: string }) => r.record_id), ['71', '72']);
    const listed = await page();
    assert.match(listed, /shop \/ 7/);
    assert.match(listed, /aria-label="Stop monitor shop \/ 7"/);

    const bad = await act('POST', '/api/v1/prober/monitors', { app_name: 'shop', group_id: '8', record_ids: '1:2', ips: '127.0.0.1', protocol: 'tcp', port: '1' });
    assert.equal(bad.status, 400);
    assert.match(body(bad).error.message, /record_ids has 2 entries but ips has 1/);
    const unknownApp = await act('POST', '/api/v1/prober/monitors', { app_name: 'nope', group_id: '8', record_ids: '1', ips: '127.0.0.1' });
    assert.equal(unknownApp.status, 404);

    const stopped = await act('POST', '/api/v1/prober/monitors/stop', { app_name: 'shop', group_id: '7' });
    assert.equal(stopped.status, 200, stopped.text);
    assert.deepEqual(body(stopped).stopped, { app_name: 'shop', group_id: 7 });
    assert.equal((await c.api('GET', '/api/v1/prober/groups')).body.groups.length, 0);
    assert.equal((await act('POST', '/api/v1/prober/monitors/stop', { app_name: 'shop', group_id: '7' })).status, 400, 'stopping it twice names the missing monitor');
  });

  test('app-store panel: install reaches /installApp with the session and answers its envelope', async () => {
    await until('app-store reported failed on the node', async () => (await c.node(a.nodeId))?.plugins?.some((p: { name: string; state: string }) => p.name === 'app-store' && p.state === 'failed'));
    assert.match(await page(), /No node is up with the app-store plugin running/, 'without a usable node the panel says why instead of offering a form that cannot work');
    const r = await act('POST', '/installApp', { appName: 'nginx', node: a.nodeId });
    assert.equal(r.status, 503, r.text);
    assert.equal(body(r).code, '0');
    assert.match(body(r).message, /app-store on node edge-act is failed: Docker Engine unreachable/);
  });

  test('pages never carry a secret, an inline script, a handler or a style attribute', async () => {
    const frag = await b.go('GET', '/dashboard/fragment', { cookie });
    assert.equal(frag.status, 200);
    const home = await page();
    assert.doesNotMatch(home, /\son[a-z]+\s*=/i, 'no inline event handler');
    assert.doesNotMatch(home, /\sstyle\s*=/i, 'no style attribute');
    assert.doesNotMatch(home, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
    assert.match(home, /<script src="\/dashboard\/actions\.js" defer><\/script>/);
    assert.match(home, /<div id="action-status" class="action-status" role="status" aria-live="polite" aria-atomic="true"><\/div>/);
    for (const r of b.seen.filter((x) => x.headers.get('content-type')?.startsWith('text/html') || x.text.startsWith('{"now"'))) {
      for (const s of secrets) assert.ok(!r.text.includes(s), `a rendered page or fragment (${r.status}) contains a secret`);
    }
    const js = await b.go('GET', '/dashboard/actions.js');
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(js.text, /x-outpost-csrf/);
  });
});
