// Loaded with `node --import` into a benchmarked server (`--trace 1`): keeps an event-loop delay
// histogram and serves it on a unix socket (loopDelaySocket(pid) in trace.ts): each connection gets
// the histogram since the previous one as JSON (milliseconds) and starts it over, so the bench reads
// the server's stalls over exactly its measuring window. Not a signal: a process serving
// hyper-express exits when any signal handler runs. Plain JS: it loads before tsx does.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createServer } from 'node:net';
import { unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RESOLUTION_MS = 10;
const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
h.enable();
// The histogram holds each sampling timer's whole interval: the delay is what exceeds the resolution.
const msOf = (ns) => Math.max(0, Math.round(ns / 1e4) / 100 - RESOLUTION_MS);
const path = join(tmpdir(), `outpost-loop-delay-${process.pid}.sock`);
const server = createServer((conn) => {
  conn.end(JSON.stringify({ p50: msOf(h.percentile(50)), p99: msOf(h.percentile(99)), p999: msOf(h.percentile(99.9)), max: msOf(h.max), count: h.count }));
  h.reset();
});
server.listen(path).unref();
process.on('exit', () => {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
});
