/**
 * Peer: the usual `ws` broadcast server. It answers goim's op 7 with op 8 so the same clients can
 * connect, and broadcasts each push as the op-9 frame Outpost sends unbatched, one send per client.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeFrame } from '../../../plugins/comet/protocol/frame.ts';
import { pushBytes } from '../../../plugins/comet/protocol/push-bytes.ts';
import { benchBody, OPERATION, serveBench } from './comet-bench-ipc.ts';

const SEND_LIMIT = 256 * 1024;
const members = new Set<WebSocket>();
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/sub', perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws) => {
  ws.once('message', (data: Buffer) => {
    ws.send(encodeFrame(data.readInt16BE(6), 8, data.readInt32BE(12)));
    members.add(ws);
  });
  ws.on('close', () => members.delete(ws));
});
await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
let dropped = 0;
serveBench(
  (wss.address() as { port: number }).port,
  () => {
    const bytes = pushBytes([{ op: OPERATION, body: benchBody() }]).ws;
    // The same per-connection limit as the others: a client that far behind is skipped.
    for (const ws of members) {
      if (ws.bufferedAmount <= SEND_LIMIT) ws.send(bytes);
      else dropped++;
    }
  },
  () => dropped,
);
