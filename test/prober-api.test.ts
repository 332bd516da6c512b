import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, http } from './helpers/cluster.ts';
import { postForm } from './prober-fixtures.ts';

// No agents here: the seed API, its codes and the external-prober path (/add_node, /node_tasks, /deal).
let c: TestController;
const TOKEN = 'caller-token-123';

before(async () => {
  c = await TestController.start({
    config: {
      plugins: {
        prober: { apps: { shop: { callbackUrl: 'http://127.0.0.1:9/cb' } }, callers: [{ ip: '127.0.0.1', token: TOKEN }], trustLoopback: false, minInterval: 10 },
      },
    },
  });
});
after(async () => c?.stop());

const form = (path: string, fields: Record<string, string | number>) => postForm(c.url + path, fields);
const base = { token: TOKEN, app_name: 'shop', group_id: 1, record_ids: '11:12', ips: '127.0.0.1:localhost' };

test('operate_monitor: form body inserts, a second call updates', async () => {
  const r = await form('/operate_monitor', base);
  assert.equal(r.status, 200);
  assert.equal(r.body.code, 1000);
  assert.equal(r.body.msg, 'insert monitor successfully.');
  const u = await form('/operate_monitor', { ...base, level: 0, interval: 300 });
  assert.equal(u.body.code, 1000);
  assert.equal(u.body.msg, 'update monitor successfully.');
  assert.equal(u.body.info.level, 0);
});

test('operate_monitor: a JSON body works the same', async () => {
  const r = await http('POST', c.url + '/operate_monitor', { body: { ...base, group_id: 2, protocol: 'tcp', port: 22 } });
  assert.equal(r.body.code, 1000, r.text);
  assert.equal(r.body.msg, 'insert monitor successfully.');
});

test('every error code from bad input, each naming the problem', async () => {
  const cases: Array<[Record<string, string | number>, number, RegExp]> = [
    [{ ...base, token: '' }, 1004, /token/i],
    [{ ...base, token: 'wrong-token' }, 1004, /token/i],
    [{ ...base, app_name: '' }, 1002, /app_name/],
    [{ token: TOKEN, app_name: 'shop', group_id: 3, ips: '127.0.0.1' }, 1002, /record_ids/],
    [{ ...base, app_name: 'nosuchapp' }, 1005, /app name/],
    [{ ...base, interval: 5 }, 1003, /interval/],
    [{ ...base, interval: 'often' }, 1003, /interval/],
    [{ ...base, group_id: 'abc' }, 1003, /group_id/],
    [{ ...base, port: 70000 }, 1003, /port/],
    [{ ...base, http_code: 99 }, 1003, /http_code/],
    [{ ...base, record_ids: '11' }, 1006, /pair/],
    [{ ...base, level: 3 }, 1006, /level/],
    [{ ...base, protocol: 'udp' }, 1006, /udp/],
    [{ ...base, protocol: 'gopher' }, 1006, /protocol/],
    [{ ...base, node_ips: 'no-such-node' }, 1006, /node_ips/],
  ];
  const httpStatus: Record<number, number> = { 1002: 400, 1003: 400, 1004: 401, 1005: 404, 1006: 400 };
  for (const [fields, code, re] of cases) {
    const r = await form('/operate_monitor', fields);
    assert.equal(r.status, httpStatus[code], `HTTP status for ${code}`);
    assert.equal(r.body.code, code, `${JSON.stringify(fields)} → ${JSON.stringify(r.body)}`);
    assert.match(r.body.msg, re);
    assert.deepEqual(r.body.info, {});
  }
});

test('ping target injection attempts are refused with 1003', async () => {
  for (const ip of ['-c 100000 127.0.0.1', '--flood', '127.0.0.1;reboot', '127.0.0.1 && id', '$(id)', '`id`', '127.0.0.1|nc', ' -i 0.01']) {
    const r = await form('/operate_monitor', { ...base, group_id: 9, record_ids: '1', ips: ip, protocol: 'icmp' });
    assert.equal(r.body.code, 1003, `${ip} → ${JSON.stringify(r.body)}`);
    assert.match(r.body.msg, /not an IP address or hostname/);
  }
  const u = await form('/update_monitor', { token: TOKEN, app_name: 'shop', group_id: 1, record_id: 11, ip: '-f' });
  assert.equal(u.body.code, 1003);
});

test('malformed JSON and wrong types answer the iplive envelope', async () => {
  const r = await http('POST', c.url + '/operate_monitor', { raw: '{"app_name":', headers: { 'content-type': 'application/json' } });
  assert.equal(r.body.code, 1003);
  assert.match(r.body.msg, /JSON/);
  const t = await http('POST', c.url + '/operate_monitor', { body: { ...base, record_ids: { a: 1 } } });
  assert.equal(t.body.code, 1003);
  assert.match(t.body.msg, /record_ids/);
});

test('update_monitor and stop_monitor', async () => {
  const u = await form('/update_monitor', { token: TOKEN, app_name: 'shop', group_id: 1, record_id: 12, ip: '127.0.0.2' });
  assert.equal(u.body.code, 1000, JSON.stringify(u.body));
  assert.equal(u.body.msg, 'update monitor successfully.');
  const groups = await c.api('GET', '/api/v1/prober/groups');
  const g1 = groups.body.groups.find((g: any) => g.app_name === 'shop' && g.group_id === 1);
  assert.equal(g1.records.find((r: any) => r.record_id === '12').ip, '127.0.0.2');
  assert.equal((await form('/update_monitor', { token: TOKEN, app_name: 'shop', group_id: 1, record_id: 99, ip: '127.0.0.1' })).body.code, 1006);
  assert.equal((await form('/update_monitor', { token: TOKEN, app_name: 'shop', group_id: 1, ip: '127.0.0.1' })).body.code, 1002);
  const s = await form('/stop_monitor', { token: TOKEN, app_name: 'shop', group_id: 2 });
  assert.equal(s.body.code, 1000);
  assert.equal(s.body.msg, 'stop monitor successfully.');
  assert.equal((await form('/stop_monitor', { token: TOKEN, app_name: 'shop', group_id: 2 })).body.code, 1006);
  assert.equal((await form('/stop_monitor', { token: 'nope', app_name: 'shop', group_id: 1 })).body.code, 1004);
});

test('native REST needs the admin token and hides cookies', async () => {
  const anon = await http('GET', c.url + '/api/v1/prober/groups');
  assert.equal(anon.status, 401);
  await form('/operate_monitor', { ...base, group_id: 5, cookies: 'session=supersecret' });
  const r = await c.api('GET', '/api/v1/prober/groups');
  assert.equal(r.status, 200);
  assert.ok(!r.text.includes('supersecret'));
  assert.equal((await c.api('GET', '/api/v1/prober/results?since=yesterday')).status, 400);
  const ok = await c.api('GET', '/api/v1/prober/results?group=shop:1&since=0');
  assert.equal(ok.status, 200);
  assert.ok(Array.isArray(ok.body.results));
  const cfg = await c.api('GET', '/api/v1/plugins/prober/config');
  assert.equal(cfg.status, 200);
  assert.ok(!cfg.text.includes(TOKEN), 'tokens are redacted from the config');
});

test('external prober: add_node, node_tasks, deal; unknown callers and bad passwords refused', async () => {
  const unknown = await form('/deal', { passwd: 'whatever-1', timestamp: Math.floor(Date.now() / 1000), data: '[]' });
  assert.equal(unknown.body.code, 1004);
  assert.match(unknown.body.msg, /add_node/);
  assert.equal((await form('/add_node', { token: TOKEN, node_ip: '127.0.0.1' })).body.code, 1002);
  assert.equal((await form('/add_node', { token: TOKEN, node_ip: 'not-an-ip', passwd: 'node-password' })).body.code, 1003);
  assert.equal((await form('/add_node', { token: 'bad', node_ip: '127.0.0.1', passwd: 'node-password' })).body.code, 1004);
  const add = await form('/add_node', { token: TOKEN, node_ip: '127.0.0.1', passwd: 'node-password' });
  assert.equal(add.body.code, 1000, JSON.stringify(add.body));
  assert.equal(add.body.info.kind, 'external');
  assert.equal((await form('/deal', { passwd: 'wrong-password', timestamp: 1, data: '[]' })).body.code, 1004);

  await form('/operate_monitor', { ...base, group_id: 20, record_ids: '201:202', ips: '127.0.0.1:127.0.0.1', level: 4, interval: 10 });
  const tasks = await form('/node_tasks', { passwd: 'node-password' });
  assert.equal(tasks.body.code, 1000);
  const mine = tasks.body.info.groups.find((g: any) => g.group_id === 20);
  assert.deepEqual(mine.records.map((r: any) => r.server_id), ['201', '202']);

  assert.equal((await form('/deal', { passwd: 'node-password', timestamp: 1 })).body.code, 1002);
  assert.equal((await form('/deal', { passwd: 'node-password', timestamp: 1, data: 'not json' })).body.code, 1003);
  assert.equal((await form('/deal', { passwd: 'node-password', timestamp: 1, data: '[{"res_time":1}]' })).body.code, 1002);
  const now = Math.floor(Date.now() / 1000);
  const d = await form('/deal', { passwd: 'node-password', timestamp: now, data: JSON.stringify([{ server_id: 201, res_time: '5', last_status: '200' }, { server_id: 202, res_time: 9, last_status: '500' }]) });
  assert.equal(d.body.code, 1000, JSON.stringify(d.body));
  assert.equal(d.body.msg, 'deal successfully.');
  assert.equal(d.body.info.accepted, 2);
  const late = await form('/deal', { passwd: 'node-password', timestamp: now - 7200, data: JSON.stringify([{ server_id: 201, res_time: 5, last_status: 1 }]) });
  assert.equal(late.body.info.late, 1);
});
