/**
 * Peer: bare uWebSockets.js, its own pub/sub (the broadcast loop in C++). It answers goim's op 7
 * with op 8 and subscribes the socket to the room; each push is one publish of the op-9 frame.
 */
import { createRequire } from 'node:module';
import { encodeFrame } from '../../../plugins/comet/protocol/frame.ts';
import { pushBytes } from '../../../plugins/comet/protocol/push-bytes.ts';
import { benchBody, OPERATION, ROOM, serveBench } from './comet-bench-ipc.ts';

interface UwsSocket {
  send(m: Uint8Array, binary: boolean): number;
  subscribe(topic: string): boolean;
}
interface UwsApp {
  ws(pattern: string, behavior: Record<string, unknown>): UwsApp;
  listen(host: string, port: number, cb: (socket: unknown) => void): UwsApp;
  publish(topic: string, message: Uint8Array, binary: boolean): boolean;
}
const uws = createRequire(import.meta.url)('uWebSockets.js') as { App(): UwsApp; us_socket_local_port(s: unknown): number };

const app = uws.App().ws('/sub', {
  idleTimeout: 0,
  maxBackpressure: 256 * 1024,
  maxPayloadLength: 4112,
  message: (ws: UwsSocket, message: ArrayBuffer) => {
    const data = Buffer.from(message);
    if (data.readInt32BE(8) !== 7) return;
    ws.send(encodeFrame(data.readInt16BE(6), 8, data.readInt32BE(12)), true);
    ws.subscribe(ROOM);
  },
});
const listenSocket = await new Promise<unknown>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('uWS cannot listen')))));
serveBench(uws.us_socket_local_port(listenSocket), () => app.publish(ROOM, pushBytes([{ op: OPERATION, body: benchBody() }]).ws, true));
