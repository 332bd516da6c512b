import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startNetnsCluster, type NetnsCluster } from './lib/netns-cluster.ts';
import { until } from '../helpers/cluster.ts';
import { offsetMs, roundStart, spreadWindowMs } from '../../plugins/prober/rounds.ts';

// Three agents in network namespaces probe in 5 s rounds (minInterval lowered for test speed).
const INTERVAL = 5;
// The test calls the controller on the bridge address, not loopback, so it sends a caller token.
const TOKEN = 'e2e-caller-token';
const prober = { apps: { shop: {} }, callers: [{ ip: '*', token: TOKEN }], minInterval: 5, graceMs: 1500 };

async function operate(c: NetnsCluster, fields: Record<string, string | number>): Promise<any> {
  const res = await fetch(`${c.controller.url}/operate_monitor`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(Object.fromEntries(Object.entries({ token: TOKEN, app_name: 'shop', interval: INTERVAL, timeout: 1, ...fields }).map(([k, v]) => [k, String(v)]))).toString(),
  });
  const body: any = await res.json();
  assert.equal(body.code, 1000, JSON.stringify(body));
  return body;
}

async function results(c: NetnsCluster, gid: number): Promise<any[]> {
  return (await c.controller.api('GET', `/api/v1/prober/results?group=shop:${gid}`)).body.results;
}

/** An HTTP server on the loopback of one namespace: only that node can reach it. */
function serveInside(c: NetnsCluster, i: number, port: number): ChildProcess {
  const script = `require('http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1', () => console.log('listening'))`;
  const [cmd, ...pre] = [...c.net.nodes[i].wrapper, process.execPath];
  return spawn(cmd, [...pre, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

test('a target reachable from one node of three: level 0 says down, level 4 says up', async () => {
  const c = await startNetnsCluster({ nodes: 3, controller: { config: { plugins: { prober } } }, agent: () => ({ plugins: { prober: {} } }) });
  const port = 18080;
  const server = serveInside(c, 0, port);
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (code) => reject(new Error(`target exited ${code}`)));
    });
    await until('three live probe nodes', async () => (await c.controller.api('GET', '/api/v1/prober/groups')).body.probe_nodes.filter((n: any) => n.live).length === 3, 30_000);
    // Every node probes 127.0.0.1 in its own namespace: only node0 finds the server there.
    await operate(c, { group_id: 1, record_ids: '101', ips: '127.0.0.1', port, level: 0 });
    await operate(c, { group_id: 2, record_ids: '201', ips: '127.0.0.1', port, level: 4 });
    const full = (gid: number) => until(`a round of group ${gid} with three answers`, async () => (await results(c, gid)).find((e) => e.records[0].received === 3), 40_000, 250);
    const [l0, l4] = await Promise.all([full(1), full(2)]);
    assert.equal(l0.records[0].state, 'down');
    assert.equal(l0.records[0].failures, 2);
    assert.equal(l0.records[0].status, 2, 'connection refused on the two other nodes');
    assert.equal(l4.records[0].state, 'up');
    const g = (await c.controller.api('GET', '/api/v1/prober/groups')).body.groups.find((x: any) => x.group_id === 2);
    assert.equal(g.records[0].nodes.node0.status, 1);
    assert.equal(g.records[0].nodes.node1.status, 2);
  } finally {
    server.kill('SIGKILL');
    await c.stop();
  }
});

test('a probe node cut off: its result is missing, not down, and it is replaced next round', async () => {
  // The target listens on the bridge, reachable from every namespace.
  const c = await startNetnsCluster({ nodes: 3, controller: { config: { plugins: { prober } } }, agent: () => ({ plugins: { prober: {} } }) });
  const target = http.createServer((_q, s) => s.end('ok'));
  await new Promise<void>((r) => target.listen(0, c.net.gatewayIp, r));
  try {
    await until('three live probe nodes', async () => (await c.controller.api('GET', '/api/v1/prober/groups')).body.probe_nodes.filter((n: any) => n.live).length === 3, 30_000);
    const window = spreadWindowMs(INTERVAL, 1, 0, 0.5);
    // A record probed late in the round, so the cut lands before the node has probed it.
    let rid = 500;
    while (offsetMs(`shop:5\u0000${rid}`, window) < 1500) rid++;
    await operate(c, { group_id: 5, record_ids: String(rid), ips: c.net.gatewayIp, port: (target.address() as AddressInfo).port, level: 1 });
    await until('a full round', async () => (await results(c, 5)).find((e) => e.records[0].received === 2), 40_000, 250);
    const g = (await c.controller.api('GET', '/api/v1/prober/groups')).body.groups.find((x: any) => x.group_id === 5);
    const victim: string = g.probe_nodes[0];
    const index = Number(victim.replace('node', ''));
    const ms = INTERVAL * 1000;
    await new Promise((r) => setTimeout(r, ms - (Date.now() % ms) + 300));
    const cutRound = roundStart(Date.now(), INTERVAL) / 1000;
    await c.cutOff(index);
    // Only rounds from the cut on: the group's first round may have had no answers at all (assigned mid-round).
    const missing = await until('a round with the cut-off node missing', async () => (await results(c, 5)).find((e) => e.timestamp >= cutRound && e.missing.includes(victim)), 30_000, 250);
    assert.equal(missing.records[0].state, 'up', `missing never counts as down: ${JSON.stringify(await results(c, 5))}`);
    assert.equal(missing.degraded, true);
    await c.waitState(index, 'down');
    const replaced = await until('a round with a replacement', async () => (await results(c, 5)).find((e) => e.timestamp > missing.timestamp && e.nodes.length === 2 && !e.nodes.includes(victim) && e.missing.length === 0), 30_000, 250);
    assert.equal(replaced.records[0].state, 'up');
    assert.equal(replaced.records[0].received, 2);
  } finally {
    target.close();
    await c.stop();
  }
});
