/**
 * Peer of the end-to-end key push: goim's `POST /goim/push/keys` and `/sub` on one bare
 * uWebSockets.js server in one process. An HTTP push is written to the key's socket in the same
 * turn: no controller, no link, no agent hop. What the machine itself costs from an HTTP request to
 * a frame at a client, at the same moment as Outpost's path is measured.
 */
import { createRequire } from 'node:module';
import { encodeFrame } from '../../../plugins/comet/protocol/frame.ts';
import { pushBytes } from '../../../plugins/comet/protocol/push-bytes.ts';
import type { ServerEvent } from './comet-bench-ipc.ts';

interface UwsSocket {
  send(m: Uint8Array, binary: boolean): number;
  getUserData(): { key?: string };
}
interface UwsResponse {
  onData(cb: (chunk: ArrayBuffer, last: boolean) => void): void;
  onAborted(cb: () => void): void;
  writeHeader(k: string, v: string): UwsResponse;
  end(body: string): void;
  cork(cb: () => void): void;
}
interface UwsRequest {
  getQuery(key: string): string | undefined;
}
interface UwsApp {
  ws(pattern: string, behavior: Record<string, unknown>): UwsApp;
  post(pattern: string, handler: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  listen(host: string, port: number, cb: (socket: unknown) => void): UwsApp;
}
const uws = createRequire(import.meta.url)('uWebSockets.js') as { App(): UwsApp; us_socket_local_port(s: unknown): number };

const byKey = new Map<string, UwsSocket>();
const OK = '{"code":0,"message":""}';

const app = uws
  .App()
  .ws('/sub', {
    idleTimeout: 0,
    maxPayloadLength: 4112,
    message: (ws: UwsSocket, message: ArrayBuffer) => {
      const data = Buffer.from(message);
      if (data.readInt32BE(8) !== 7) return;
      const key = String((JSON.parse(data.subarray(16).toString()) as { key?: string }).key ?? '');
      ws.getUserData().key = key;
      byKey.set(key, ws);
      ws.send(encodeFrame(data.readInt16BE(6), 8, data.readInt32BE(12)), true);
    },
    close: (ws: UwsSocket) => {
      const key = ws.getUserData().key;
      if (key !== undefined && byKey.get(key) === ws) byKey.delete(key);
    },
  })
  .post('/goim/push/keys', (res, req) => {
    const key = req.getQuery('keys') ?? '';
    const op = Number(req.getQuery('operation') ?? 0);
    const chunks: Buffer[] = [];
    let aborted = false;
    res.onAborted(() => (aborted = true));
    res.onData((chunk, last) => {
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!last || aborted) return;
      byKey.get(key)?.send(pushBytes([{ op, body: Buffer.concat(chunks) }]).ws, true);
      res.cork(() => res.writeHeader('content-type', 'application/json').end(OK));
    });
  });

const listenSocket = await new Promise<unknown>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('uWS cannot listen')))));
process.on('message', (cmd: { t: string }) => {
  if (cmd.t === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send?.({ t: 'ready', port: uws.us_socket_local_port(listenSocket) } satisfies ServerEvent);
