/**
 * The report boundary over the real link: a report whose data does not fit the plugin's schema is
 * acknowledged (never replayed forever) with an `error` naming the field, and counted; a report
 * with fields the controller does not know is applied with those fields kept (agents upgrade apart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, http, until } from './helpers/cluster.ts';
import { fakeSample, openRawLink, sampleReport } from './helpers/raw-link.ts';

test('a refused report is acked with the error and counted; unknown fields of an accepted one are kept', async () => {
  const c = await TestController.start();
  try {
    const r = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: await c.joinToken(), name: 'newer-agent' } });
    const link = await openRawLink(c.url, r.body.credential);
    const acks: Array<{ seq: number; error?: string }> = [];
    link.ws.on('message', (m) => {
      const msg = JSON.parse(String(m));
      if (msg.t === 'ack') acks.push(msg);
    });
    await link.hello(r.body.nodeId);
    const t0 = Date.now();
    link.send(sampleReport(1, t0, { ...fakeSample(t0 + 1), cpu: { percent: 'high', cores: 2 } }));
    link.send(sampleReport(2, t0, { ...fakeSample(t0 + 2), gpu: { percent: 12 }, memory: { ...fakeSample(0).memory, hugePages: 4 } }));
    await until('both acknowledged', () => acks.length === 2);

    assert.equal(acks[0].seq, 1);
    assert.match(acks[0].error ?? '', /^report server-stats\.sample refused: cpu\.percent: Invalid input: expected number, received string$/);
    assert.deepEqual(acks[1], { t: 'ack', seq: 2 }, 'an accepted report is acked without error');
    const metrics = (await http('GET', `${c.url}/metrics`)).text;
    assert.match(metrics, /^outpost_plugin_boundary_refused_total\{kind="report",plugin="server-stats",type="sample"\} 1$/m);

    const stats = (await c.api('GET', `/api/v1/nodes/${r.body.nodeId}/stats`)).body;
    assert.equal(stats.history.length, 1, 'only the accepted sample is applied');
    assert.deepEqual(stats.latest.gpu, { percent: 12 }, 'a field this controller does not know is kept');
    assert.equal(stats.latest.memory.hugePages, 4, 'also inside known objects');
    link.ws.close();
  } finally {
    await c.stop();
  }
});
