/**
 * `npm start` (`outpost start`): the newcomer's first command. A controller and a local agent in one
 * process on embedded defaults show one live node with stats; a second start reuses the same data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { http, run, stopProc, tempDir, until, type Proc } from './helpers/cluster.ts';

async function start(data: string): Promise<{ proc: Proc; url: string }> {
  // Port 0 for both servers: the printed URLs say where they landed.
  const proc = run(['start', '--data', data, '--port', '0', '--agent-port', '0', '--host', '127.0.0.1']);
  const m = await proc.waitFor(/Dashboard and REST API: (http:\/\/\S+?)\/?\n[\s\S]*Local agent API: +(http:\/\/\S+)/, 60_000);
  return { proc, url: m[1] };
}

test('outpost start: one live node with stats on /api/v1/nodes and /searchServer; a second start reuses the data', async () => {
  const data = join(await tempDir('outpost-start-'), 'data');
  let { proc, url } = await start(data);
  try {
    const token = (await proc.waitFor(/Admin token \(shown once; store it now\): (\S+)/, 10_000))[1];
    // Right after the banner, before any heartbeat made the node "up": commands reach it (no wait).
    const status = await http('GET', `${url}/api/v1/prober/nodes/local`, { token });
    assert.equal(status.status, 200, status.text);
    const apps = await http('GET', `${url}/getAllAppInfo`, { token });
    if (apps.status === 200) assert.equal(apps.body.code, '1', apps.text);
    else assert.match(apps.body.message, /^(Docker is not available on node local: .+|app-store on node local is failed: .+)$/, apps.text);
    const node = await until('the local node up', async () => {
      const r = await http('GET', `${url}/api/v1/nodes`, { token });
      return r.body?.nodes?.length === 1 && r.body.nodes[0].state === 'up' ? r.body.nodes[0] : undefined;
    }, 60_000);
    assert.equal(node.name, 'local');
    const stats = await until('stats on /searchServer', async () => {
      const r = await http('GET', `${url}/searchServer`, { token });
      return r.body?.code === '1' ? r.body : undefined;
    }, 60_000);
    assert.match(stats.data.cpu, /^\d+(\.\d+)?%$/);
    assert.match(stats.data.memory, /^\d+(\.\d+)?%$/);
    assert.ok((await stat(join(data, 'controller'))).isDirectory() && (await stat(join(data, 'agent'))).isDirectory(), 'data under --data');
    // dns-sync runs on the dry-run provider: what it would write for the local node, which declares itself.
    const dns = await until('dns-sync has what dry-run would write', async () => {
      const r = await http('GET', `${url}/api/v1/dns-sync/status`, { token });
      return r.body?.dryRun?.[0]?.records?.length === 3 ? r.body : undefined;
    }, 60_000);
    assert.deepEqual(dns.dryRun[0].records.map((r: { name: string; values: string[] }) => `${r.name} ${r.values}`), ['telecom.www.example.test 127.0.0.1', 'unicom.www.example.test 127.0.0.1', 'www.example.test 127.0.0.1']);
    assert.deepEqual(dns.nodes.map((n: { name: string; source: string }) => `${n.name} ${n.source}`), ['local agent']);

    await stopProc(proc, 'SIGTERM');
    ({ proc, url } = await start(data));
    assert.doesNotMatch(proc.output(), /Admin token \(shown once/, 'the admin token is printed at first start only');
    const again = await until('the same node up again', async () => {
      const r = await http('GET', `${url}/api/v1/nodes`, { token });
      return r.status === 200 && r.body.nodes.length === 1 && r.body.nodes[0].state === 'up' && r.body.nodes[0].connected ? r.body.nodes[0] : undefined;
    }, 60_000);
    assert.equal(again.id, node.id, 'the agent kept its enrollment; no second node');
  } finally {
    await stopProc(proc, 'SIGTERM');
  }
});
