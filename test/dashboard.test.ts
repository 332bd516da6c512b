import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { TestController, TestAgent, until, freePort as closedPort } from './helpers/cluster.ts';
import { browser, csrfOf } from './helpers/browser.ts';

const WEBHOOK_SECRET = 'whsec_dashboard_test_0123456789abcdef';
const URL_PASSWORD = 'urlpass-dashboard-77';
const URL_TOKEN = 'querytoken-dashboard-88';
const XSS = '"><img src=x onerror=alert(1)><script>alert(2)</script>';

test('dashboard: sign-in, live nodes, panels, fragments, escaping, no secrets, CSRF and sign-out', async () => {
  const c = await TestController.start();
  const agents: TestAgent[] = [];
  const b = browser(c.url);
  try {
    const port = await closedPort();
    const hook = await c.api('POST', '/api/v1/webhooks', { url: `http://ops:${URL_PASSWORD}@127.0.0.1:${port}/hook?token=${URL_TOKEN}`, secret: WEBHOOK_SECRET, events: ['node.up', 'node.down'], description: XSS });
    assert.equal(hook.status, 201, hook.text);
    agents.push(await TestAgent.start(c, { name: 'edge-a', labels: { zone: XSS } }), await TestAgent.start(c, { name: 'edge-b' }));
    await until('both nodes up', async () => (await c.node(agents[0].nodeId))?.state === 'up' && (await c.node(agents[1].nodeId))?.state === 'up', 30_000);

    // Signed out: the sign-in form, with the security headers and nothing else.
    const anon = await b.go('GET', '/');
    assert.equal(anon.status, 200);
    assert.match(anon.text, /<form method="post" action="\/login">/);
    assert.match(anon.text, /<meta name="viewport" content="width=device-width,initial-scale=1">/);
    assert.doesNotMatch(anon.text, /edge-a/);
    const csp = anon.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(anon.headers.get('x-frame-options'), 'DENY');
    assert.equal(anon.headers.get('cache-control'), 'no-store');

    const frag401 = await b.go('GET', '/dashboard/fragment');
    assert.equal(frag401.status, 401);
    assert.match(JSON.parse(frag401.text).error.message, /sign in/);
    assert.equal((await b.go('GET', '/dashboard/fragment', { cookie: 'outpost_session=forged-session-id' })).status, 401);

    // Wrong, empty, URL-borne and cross-site sign-ins are all refused without a cookie.
    const wrong = await b.go('POST', '/login', { form: { token: 'opa_not_the_token' }, headers: { origin: c.url } });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /not valid/);
    assert.equal(wrong.headers.get('set-cookie'), null);
    assert.equal((await b.go('POST', '/login', { form: { token: '' } })).status, 400);
    const inUrl = await b.go('POST', `/login?token=${encodeURIComponent(c.adminToken)}`, { form: {} });
    assert.equal(inUrl.status, 400);
    assert.equal(inUrl.headers.get('set-cookie'), null);
    const cross = await b.go('POST', '/login', { form: { token: c.adminToken }, headers: { origin: 'http://evil.example' } });
    assert.equal(cross.status, 403);
    assert.equal(cross.headers.get('set-cookie'), null);
    const crossFetch = await b.go('POST', '/login', { form: { token: c.adminToken }, headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(crossFetch.status, 403);

    // Behind a proxy that rewrites Host, the browser's Sec-Fetch-Site still vouches for our own form.
    const proxied = await b.go('POST', '/login', { form: { token: c.adminToken }, headers: { origin: 'https://outpost.example.net', 'sec-fetch-site': 'same-origin' } });
    assert.equal(proxied.status, 303);
    const proxiedCookie = (proxied.headers.get('set-cookie') ?? '').split(';')[0];
    const proxiedCsrf = csrfOf((await b.go('GET', '/', { cookie: proxiedCookie })).text);
    assert.equal((await b.go('POST', '/logout', { cookie: proxiedCookie, form: { csrf: proxiedCsrf }, headers: { 'sec-fetch-site': 'same-origin' } })).status, 303);

    // A good sign-in: an opaque, httpOnly, SameSite=Strict session cookie and a redirect to a clean URL.
    const ok = await b.go('POST', '/login', { form: { token: c.adminToken }, headers: { origin: c.url } });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/');
    const setCookie = ok.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^outpost_session=[A-Za-z0-9_-]{20,};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Path=\//);
    const cookie = setCookie.split(';')[0];

    const home = await b.go('GET', '/', { cookie });
    assert.equal(home.status, 200);
    for (const name of ['edge-a', 'edge-b']) assert.match(home.text, new RegExp(`<tr data-node="${name}" data-state="up">`));
    assert.match(home.text, /<section id="p-server-stats" class="card panel"/, 'the server-stats plugin panel has its own section');
    assert.match(home.text, /action="\/logout"/);
    assert.match(home.text, /<script src="\/dashboard\/app\.js" defer><\/script>/);
    assert.doesNotMatch(home.text, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
    assert.match(home.text, /node\.up/, 'recent events are listed');
    // Escaped, never live: a label value and a webhook description carrying markup.
    assert.ok(!home.text.includes('<img src=x'), 'label markup must be escaped');
    assert.ok(!home.text.includes('<script>alert(2)'), 'description markup must be escaped');
    assert.ok(home.text.includes('&lt;img src=x onerror=alert(1)&gt;'));

    // The admin REST accepts the session too; the bearer header is not needed from the browser.
    assert.equal((await b.go('GET', '/api/v1/nodes', { cookie })).status, 200);
    // ...but not from another origin, even a same-site one the cookie would ride along with.
    const csrf = csrfOf(home.text);
    const forged = await b.go('POST', '/api/v1/webhooks', { cookie, form: { url: 'http://127.0.0.1:9/steal' }, headers: { origin: 'http://evil.example', 'sec-fetch-site': 'same-site', 'x-outpost-csrf': csrf } });
    assert.equal(forged.status, 403);
    assert.match(JSON.parse(forged.text).error.message, /cross-site request refused/);
    assert.equal((await c.api('GET', '/api/v1/webhooks')).body.webhooks.length, 1, 'no subscription was added cross-site');

    const js = await b.go('GET', '/dashboard/app.js');
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(js.text, /\/dashboard\/fragment/);
    const css = await b.go('GET', '/dashboard/app.css');
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    assert.match(css.text, /@media \(max-width/);

    // Live state: a node that stops beating turns down in the fragment the page polls.
    await agents[1].kill();
    // The state is shown once decided; its node.down event once the event log has recorded it (a moment later).
    const down = await until('edge-b down in the fragment, with its node.down event', async () => {
      const r = await b.go('GET', '/dashboard/fragment', { cookie });
      if (r.status !== 200 || !r.text.includes('data-node=\\"edge-b\\" data-state=\\"down\\"')) return undefined;
      const events = (JSON.parse(r.text).sections as Array<{ id: string; html: string }>).find((x) => x.id === 's-events');
      return events?.html.includes('node.down') ? r : undefined;
    }, 30_000);
    const sections = JSON.parse(down.text).sections as Array<{ id: string; slot: string; html: string }>;
    assert.deepEqual(sections.filter((s) => s.slot === 'fixed').map((s) => s.id).sort(), ['s-controllers', 's-events', 's-nodes', 's-plugins', 's-summary', 's-webhooks']);
    // The controllers section says what /api/v1/status says: this controller, holding the lease on files.
    const status = (await c.api('GET', '/api/v1/status')).body;
    const controllers = sections.find((s) => s.id === 's-controllers')!.html;
    assert.match(status.controller.id, /^ctl_[0-9a-f]{16}$/);
    assert.ok(controllers.includes(`data-controller="${status.controller.id}"`), controllers);
    assert.match(controllers, /lease <span class="badge[^"]*">held<\/span>/);
    assert.match(controllers, /Store: lowdb/);
    assert.ok(sections.some((s) => s.id === 'p-server-stats' && s.slot === 'panel'));
    const webhooks = sections.find((s) => s.id === 's-webhooks')!.html;
    assert.match(webhooks, /data-count="pending">\d+</);
    assert.match(webhooks, /data-count="dead">0</);
    assert.ok(sections.find((s) => s.id === 's-events')!.html.includes('node.down'));

    // Cross-site sign-out, or one without the session's CSRF token, is refused and leaves the session alone; a same-origin one ends it.
    assert.equal((await b.go('POST', '/logout', { cookie, form: { csrf }, headers: { origin: 'http://evil.example' } })).status, 403);
    assert.equal((await b.go('POST', '/logout', { cookie, headers: { origin: c.url } })).status, 403);
    assert.equal((await b.go('POST', '/logout', { cookie, form: { csrf: 'x'.repeat(csrf.length) }, headers: { origin: c.url } })).status, 403);
    assert.equal((await b.go('GET', '/dashboard/fragment', { cookie })).status, 200);
    const out = await b.go('POST', '/logout', { cookie, form: { csrf }, headers: { origin: c.url } });
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await b.go('GET', '/dashboard/fragment', { cookie })).status, 401);
    assert.equal((await b.go('GET', '/api/v1/nodes', { cookie })).status, 401);

    // Nothing the dashboard ever sent carries a secret.
    for (const r of b.seen) {
      const all = r.text + [...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
      for (const secret of [c.adminToken, WEBHOOK_SECRET, URL_PASSWORD, URL_TOKEN]) assert.ok(!all.includes(secret), `a dashboard response (${r.status}) contains a secret`);
    }
  } finally {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await c.stop();
  }
});

test('dashboard: repeated wrong tokens from one address are throttled', async () => {
  const c = await TestController.start();
  const b = browser(c.url);
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await b.go('POST', '/login', { form: { token: `opa_wrong_${i}` } })).status);
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
    assert.equal(statuses[10], 429);
    // Throttled means throttled: even the right token waits.
    const r = await b.go('POST', '/login', { form: { token: c.adminToken } });
    assert.equal(r.status, 429);
    assert.match(r.text, /Too many failed sign-ins/);
  } finally {
    await c.stop();
  }
});

test('dashboard: a session survives a controller restart; the store holds a hash of it, never the token', async () => {
  const c = await TestController.start();
  const b = browser(c.url);
  try {
    const cookie = await b.signIn(c.adminToken);
    const csrf = csrfOf((await b.go('GET', '/', { cookie })).text);
    await c.restart('SIGKILL');
    const after = browser(c.url);
    const home = await after.go('GET', '/', { cookie });
    assert.equal(home.status, 200);
    assert.equal(csrfOf(home.text), csrf, 'the CSRF token is the same session\'s after the restart');
    assert.equal((await after.go('GET', '/api/v1/nodes', { cookie })).status, 200);
    const stored = await readFile(join(c.dataDir, 'sessions.json'), 'utf8');
    const token = cookie.split('=')[1];
    assert.ok(!stored.includes(token), 'the session token is not stored');
    assert.ok(!stored.includes(csrf), 'nor its CSRF token');
    assert.ok(stored.includes(createHash('sha256').update(token).digest('hex')));
    // Signed out after the restart: the stored session is gone, so it is refused from then on.
    assert.equal((await after.go('POST', '/logout', { cookie, form: { csrf }, headers: { origin: c.url } })).status, 303);
    assert.equal((await after.go('GET', '/dashboard/fragment', { cookie })).status, 401);
    assert.ok(!(await readFile(join(c.dataDir, 'sessions.json'), 'utf8')).includes(createHash('sha256').update(token).digest('hex')));
  } finally {
    await c.stop();
  }
});

test('dashboard sessions: expired ones are refused and pruned, and the number kept is bounded', async () => {
  const { Sessions, MAX_SESSIONS } = await import('../controller/sessions.ts');
  const dir = await mkdtemp(join(tmpdir(), 'outpost-sessions-'));
  try {
    const expired = await Sessions.open(dir, -1);
    const old = await expired.create();
    assert.equal(expired.valid({ cookie: `outpost_session=${old.id}` }), false, 'an expired session is refused');
    const live = await Sessions.open(join(dir, 'live'));
    const first = await live.create();
    // Created in a later millisecond than the first, so "oldest" is not a tie.
    for (const t = Date.now(); Date.now() === t; ) await new Promise((r) => setTimeout(r, 1));
    const rest = await Promise.all(Array.from({ length: MAX_SESSIONS + 4 }, () => live.create()));
    const stored = JSON.parse(await readFile(join(dir, 'live', 'sessions.json'), 'utf8')).sessions;
    assert.equal(Object.keys(stored).length, MAX_SESSIONS);
    assert.equal(live.valid({ cookie: `outpost_session=${first.id}` }), false, 'the oldest went first');
    assert.equal(live.valid({ cookie: `outpost_session=${rest.at(-1)!.id}` }), true);
    // The expired one is dropped by the next sign-in on its store.
    await expired.create();
    const left = JSON.parse(await readFile(join(dir, 'sessions.json'), 'utf8')).sessions;
    assert.equal(Object.keys(left).length, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dashboard views: a throwing or hanging panel shows its own error; event details and errors are scrubbed', async () => {
  const { panelSections, eventSummary, scrub } = await import('../controller/dashboard/views.ts');
  const panels = [
    { plugin: 'good', panel: { title: 'Good <panel>', render: () => '<p>fine</p>' } },
    { plugin: 'broken', panel: { title: 'Broken', render: () => { throw new Error('db down: password=hunter22'); } } },
    { plugin: 'slow', panel: { title: 'Slow', render: () => new Promise<string>(() => undefined) } },
  ];
  const deps = { plugins: { panels: () => panels } } as unknown as Parameters<typeof panelSections>[0];
  const out = await panelSections(deps);
  assert.deepEqual(out.map((s) => s.id), ['p-good', 'p-broken', 'p-slow']);
  assert.match(out[0].html, /<h2>Good &lt;panel&gt; /);
  assert.match(out[0].html, /<p>fine<\/p>/);
  assert.match(out[1].html, /Panel unavailable: db down: password=\*\*\*/);
  assert.ok(!out[1].html.includes('hunter22'));
  assert.match(out[2].html, /did not render within/);

  assert.equal(eventSummary({ node: { name: 'edge-a' }, previous: 'up' }), 'node edge-a · was up');
  const custom = eventSummary({ record: 'www', apiKey: 'AKIA-should-not-show', note: 'token=abc123' });
  assert.ok(!custom.includes('AKIA-should-not-show') && !custom.includes('abc123'), custom);
  assert.equal(scrub('GET https://ops:pw@hooks.example/x failed: Bearer eyJabc.def'), 'GET https://***@hooks.example/x failed: Bearer ***');
});
