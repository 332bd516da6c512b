/**
 * The jobs benchmark's callback receiver, in its own process so neither side's CPU includes it: a
 * node:http server on loopback that answers `success` to every POST and records, per job, when its
 * callback arrived. The job's index and due time travel in the content: `{"data":{"i":…,"due":…}}`.
 * Driven over IPC: {op:'reset', jobs} → {op:'ready'}, {op:'stats'} → {op:'stats', …}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let received = new Float64Array(0);
let lateness: number[] = [];
let count = 0;
let duplicates = 0;
let unsigned = 0;
let malformed = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = Date.now();
    // Both sides send the same signed headers (they share the callback performer); count any that do not.
    if (!req.headers.signature || !req.headers['x-outpost-signature']) unsigned++;
    let job: { i: number; due: number } | undefined;
    try {
      job = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { i: number; due: number } }).data;
    } catch {
      malformed++;
    }
    if (job && Number.isInteger(job.i) && job.i >= 0 && job.i < received.length) {
      if (received[job.i]) duplicates++;
      else {
        received[job.i] = at;
        lateness.push(at - job.due);
        count++;
      }
    } else malformed++;
    res.end('success');
  });
});
server.keepAliveTimeout = 120_000;
server.listen(0, '127.0.0.1', () => process.send!({ op: 'listening', port: (server.address() as AddressInfo).port }));

process.on('message', (m: { op: string; jobs?: number }) => {
  if (m.op === 'reset') {
    received = new Float64Array(m.jobs!);
    lateness = [];
    count = duplicates = unsigned = malformed = 0;
    process.send!({ op: 'ready' });
  } else if (m.op === 'stats') {
    let first = Infinity;
    let last = 0;
    for (const t of received) if (t) (first = Math.min(first, t)), (last = Math.max(last, t));
    process.send!({ op: 'stats', count, duplicates, unsigned, malformed, first, last, lateness: m.jobs ? lateness : [] });
  } else if (m.op === 'exit') {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
// The bench is gone (crashed or killed): do not outlive it.
process.on('disconnect', () => process.exit(0));
