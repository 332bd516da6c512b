/**
 * The link benchmark's peer: a bare hyper-express WebSocket server speaking just enough of the link
 * (welcome on hello, ack on report, heartbeats parsed and counted) with no authentication, registry,
 * validation or watchdog. What it costs at N agents is the transport's floor under the controller.
 */
import HyperExpress from 'hyper-express';

const app = new HyperExpress.Server();
let beats = 0;
app.upgrade('/api/v1/link', (_req, res) => res.upgrade({}));
app.ws('/api/v1/link', { idle_timeout: 12, max_payload_length: 16 * 1024 * 1024 }, (ws) => {
  ws.on('message', (raw: string) => {
    const msg = JSON.parse(raw);
    if (msg.t === 'hb') beats++;
    else if (msg.t === 'hello') ws.send(JSON.stringify({ t: 'welcome', nodeId: msg.nodeId, config: {}, lastSeq: 0, hbInterval: 2000 }));
    else if (msg.t === 'report') ws.send(JSON.stringify({ t: 'ack', seq: msg.seq }));
  });
});
app.get('/beats', (_req, res) => res.json({ beats }));
await app.listen(0, '127.0.0.1');
process.stdout.write(`bare link server on port ${(app as unknown as { port: number }).port}\n`);
