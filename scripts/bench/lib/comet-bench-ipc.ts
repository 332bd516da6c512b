/**
 * The comet benchmark's process protocol: the bench forks one server at a time (Outpost's gateway
 * or a peer) and client worker processes, and drives them over IPC. The push source runs inside
 * the server process, the same for every server, so only fan-out is measured.
 */
export type ServerCommand = { t: 'push'; rate: number } | { t: 'stop-push' } | { t: 'gc' } | { t: 'stats' } | { t: 'exit' };
/** `dropped`: messages the server itself dropped for clients over its send limit, where it can tell (uWS pub/sub skips them silently). */
export type ServerEvent = { t: 'ready'; port: number } | { t: 'gc-done' } | { t: 'stats'; pushes: number; dropped?: number };

/**
 * `keyPrefix`: keys `<prefix><id>` (default: empty keys, the server makes them up); `sampleEvery`: one
 * latency sample per that many messages (default 512); `room`: the room joined (default ROOM).
 */
export type WorkerCommand =
  | { t: 'connect'; port: number; conns: number; firstId: number; concurrency: number; localAddresses: number; keyPrefix?: string; sampleEvery?: number; room?: string }
  | { t: 'report' }
  | { t: 'exit' };
export type WorkerEvent =
  | { t: 'progress'; connected: number; failed: number; closed: number; errors: string[] }
  | { t: 'report'; received: number; bad: number; latenciesMs: number[] };

/** goim's benchmark body, plus the send time (CLOCK_MONOTONIC, shared by processes) for latency samples. */
export function benchBody(): Buffer {
  return Buffer.from(`{"test":1,"t":${process.hrtime.bigint()}}`);
}

export const ROOM = 'bench://1';
export const OPERATION = 1000;

/**
 * Issues `rate` pushes per second from a 1 ms timer, catching up on what is due, so a slow server
 * gets the same demand as a fast one (a busy event loop runs the timer late, so ticks come in
 * bursts); at most 100 ms worth per tick, so a server that cannot keep up still answers the bench
 * between ticks instead of owing an ever longer burst (it falls behind, which pushed/delivered shows).
 * Returns the stop function.
 */
export function startPushing(rate: number, push: () => void): () => void {
  const t0 = performance.now();
  const perTick = Math.max(1, Math.ceil(rate / 10));
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.min(Math.floor(((performance.now() - t0) / 1000) * rate), sent + perTick);
    for (; sent < due; sent++) push();
  }, 1);
  return () => clearInterval(timer);
}

/** Runs a server's side of the protocol; `push` sends one message to the room. */
export function serveBench(port: number, push: () => void, dropped?: () => number): void {
  let stop: (() => void) | undefined;
  let pushes = 0;
  const counted = () => {
    pushes++;
    push();
  };
  const send = (e: ServerEvent) => process.send?.(e);
  process.on('message', (cmd: ServerCommand) => {
    if (cmd.t === 'push') {
      stop?.();
      stop = startPushing(cmd.rate, counted);
    } else if (cmd.t === 'stop-push') {
      stop?.();
      stop = undefined;
    } else if (cmd.t === 'stats') {
      send({ t: 'stats', pushes, dropped: dropped?.() });
    } else if (cmd.t === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      send({ t: 'gc-done' });
    } else process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
  send({ t: 'ready', port });
}
