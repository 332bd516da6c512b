/**
 * A comet bench worker process: many WebSocket clients on raw TCP sockets (the upgrade written by
 * hand, frames parsed in place), so that 10,000+ clients cost the machine as little as possible and
 * the server is what is measured. Each sends goim's op 7 and then only reads: it counts the inner
 * frames of every op-9 message and samples the latency of one message in 512 from its send time.
 */
import { connect, type Socket } from 'node:net';
import { encodeFrame } from '../../../plugins/comet/protocol/frame.ts';
import { ROOM, type WorkerCommand, type WorkerEvent } from './comet-bench-ipc.ts';

const UPGRADE = (port: number) =>
  `GET /sub HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

let received = 0;
let sampleEvery = 512;
let bad = 0;
let latencies: number[] = [];
let connected = 0;
let failed = 0;
let closed = 0;
const errors: string[] = [];
const sockets: Socket[] = [];

/** A client WebSocket frame: FIN + binary, masked with a zero key (payload unchanged). */
function maskedBinary(payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x82, 0x80 | len, 0, 0, 0, 0]) : Buffer.from([0x82, 0x80 | 126, len >> 8, len & 255, 0, 0, 0, 0]);
  return Buffer.concat([head, payload]);
}

const T_KEY = Buffer.from('"t":');

function onPayload(p: Buffer, state: { authed: boolean }): void {
  if (p.length < 16) return void bad++;
  const op = p.readInt32BE(8);
  if (op === 8) {
    state.authed = true;
    connected++;
    return;
  }
  if (op !== 9) return;
  for (let off = 16; off + 16 <= p.length; ) {
    const packLen = p.readInt32BE(off);
    if (packLen < 16 || p.readInt32BE(off + 8) !== 1000) {
      bad++;
      return;
    }
    if (++received % sampleEvery === 0) {
      const i = p.indexOf(T_KEY, off + 16);
      if (i > 0 && i < off + packLen) {
        const sent = BigInt(p.toString('latin1', i + 4, off + packLen - 1));
        latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
      }
    }
    off += packLen;
  }
}

function client(port: number, id: number, localAddresses: number, auth: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${1 + (id % localAddresses)}` });
    sock.setNoDelay(true);
    sockets.push(sock);
    const state = { authed: false };
    let upgraded = false;
    let pending: Buffer | undefined;
    let settled = false;
    // A server out of file descriptors leaves connections in its accept queue, unanswered.
    const timer = setTimeout(() => {
      settle(false, 'no op 8 within 30 s');
      sock.destroy();
    }, 30_000);
    const settle = (ok: boolean, why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!ok) {
        failed++;
        if (why && errors.length < 5) errors.push(why);
      }
      resolve();
    };
    sock.on('connect', () => sock.write(UPGRADE(port)));
    sock.on('data', (chunk: Buffer) => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return void (pending = buf);
        if (!buf.toString('latin1', 0, 12).includes('101')) {
          settle(false, buf.toString('latin1', 0, 40));
          return void sock.destroy();
        }
        upgraded = true;
        sock.write(maskedBinary(auth));
        buf = buf.subarray(end + 4);
      }
      let off = 0;
      while (buf.length - off >= 2) {
        const opcode = buf[off] & 0x0f;
        let len = buf[off + 1] & 0x7f;
        let head = 2;
        if (len === 126) {
          if (buf.length - off < 4) break;
          len = buf.readUInt16BE(off + 2);
          head = 4;
        } else if (len === 127) {
          if (buf.length - off < 10) break;
          len = Number(buf.readBigUInt64BE(off + 2));
          head = 10;
        }
        if (buf.length - off < head + len) break;
        if (opcode === 2) {
          const wasAuthed = state.authed;
          onPayload(buf.subarray(off + head, off + head + len), state);
          if (!wasAuthed && state.authed) settle(true);
        }
        off += head + len;
      }
      if (off < buf.length) pending = Buffer.from(buf.subarray(off));
    });
    sock.on('error', (err) => settle(false, err.message));
    sock.on('close', () => {
      if (state.authed) closed++;
      settle(false, 'closed');
    });
  });
}

const send = (e: WorkerEvent) => process.send?.(e);
const progress = () => send({ t: 'progress', connected, failed, closed, errors });

process.on('message', async (cmd: WorkerCommand) => {
  if (cmd.t === 'connect') {
    sampleEvery = Math.max(1, cmd.sampleEvery ?? 512);
    const timer = setInterval(progress, 500);
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < cmd.conns; i = next++) {
        const key = cmd.keyPrefix === undefined ? '' : `${cmd.keyPrefix}${cmd.firstId + i}`;
        const auth = encodeFrame(1, 7, 1, Buffer.from(JSON.stringify({ mid: cmd.firstId + i, key, room_id: cmd.room ?? ROOM, platform: 'ios', accepts: [1000] })));
        await client(cmd.port, cmd.firstId + i, cmd.localAddresses, auth);
      }
    };
    await Promise.all(Array.from({ length: cmd.concurrency }, lane));
    clearInterval(timer);
    progress();
  } else if (cmd.t === 'report') {
    send({ t: 'report', received, bad, latenciesMs: latencies });
    latencies = [];
  } else {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
