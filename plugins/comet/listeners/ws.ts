import HyperExpress from 'hyper-express';
import { decodeMessage, MAX_PACK } from '../protocol/frame.ts';
import type { PushBytes } from '../protocol/push-bytes.ts';
import type { Gateway } from '../gateway/gateway.ts';
import type { CloseReason, Transport } from '../gateway/transport.ts';
import type { Listening, ListenOptions } from './listening.ts';
import { plainIp } from './tcp.ts';

type HxSocket = HyperExpress.Websocket;
/** uWS's WebSocket: send() answers 0 (queued), 1 (sent) or 2 (dropped: over maxBackpressure). */
interface RawSocket {
  send(message: Uint8Array, isBinary: boolean, compress: boolean): number;
  getBufferedAmount(): number;
}
const DROPPED = 2;

/** Close codes per reason; 4000+ are the application's own range. */
const CLOSE: Record<Exclude<CloseReason, 'slow' | 'shutdown' | 'peer'>, [number, string]> = {
  frame: [1002, 'bad frame'],
  auth: [1008, 'auth refused'],
  kicked: [4001, 'same key connected again'],
  'handshake-timeout': [4002, 'no auth in time'],
  'heartbeat-timeout': [4003, 'no heartbeat in time'],
  flood: [1008, 'too many frames before auth reply'],
  full: [1013, 'connection limit reached'],
};

/** One goim frame per binary message; pushes are the op-9 frame as one message. */
class WsTransport implements Transport {
  readonly kind = 'ws';
  readonly ip: string;
  private readonly raw: RawSocket;

  constructor(private readonly ws: HxSocket) {
    this.raw = ws.raw as unknown as RawSocket;
    this.ip = plainIp(normalizeIp(ws.ip));
  }

  reply(frame: Buffer): boolean {
    return this.raw.send(frame, true, false) !== DROPPED;
  }

  push(p: PushBytes): boolean {
    return this.raw.send(p.ws, true, false) !== DROPPED;
  }

  buffered(): number {
    return this.raw.getBufferedAmount();
  }

  close(reason: CloseReason): void {
    // A slow consumer would never read a close frame queued behind its backlog: cut it.
    if (reason === 'slow' || reason === 'shutdown' || reason === 'peer') this.ws.destroy();
    else this.ws.close(...CLOSE[reason]);
  }
}

/**
 * WebSocket (and, with `tls`, WSS) on hyper-express/uWS: `/sub` only, text or binary frames read
 * alike, replies binary. uWS enforces the per-connection send limit (maxBackpressure) and closes a
 * client message larger than a goim frame may be.
 */
/** Mounts goim's `/sub` on a hyper-express app (what the SDK's `ctx.listen.http` returns); `onSocket` sees every socket. */
export function mountSub(app: Pick<HyperExpress.Server, 'ws'>, gateway: Gateway, onSocket?: (ws: HxSocket) => void): void {
  app.ws('/sub', { idle_timeout: 0, max_payload_length: MAX_PACK, max_backpressure: gateway.opts.sendBufferBytes, message_type: 'ArrayBuffer' }, (ws) => {
    onSocket?.(ws);
    const session = gateway.open(new WsTransport(ws));
    if (!session) return;
    ws.on('message', (data: ArrayBuffer) => {
      const f = decodeMessage(Buffer.from(data));
      if (typeof f === 'string') session.onFrameError(f);
      else void session.onFrame(f);
    });
    ws.on('close', () => session.close('peer'));
  });
}

export async function listenWebSocket(opts: ListenOptions, gateway: Gateway): Promise<Listening> {
  const app = new HyperExpress.Server({ auto_close: false, ...(opts.tls ? { cert_file_name: opts.tls.cert, key_file_name: opts.tls.key } : {}) });
  const sockets = new Set<HxSocket>();
  mountSub(app, gateway, (ws) => {
    sockets.add(ws);
    ws.on('close', () => {
      sockets.delete(ws);
    });
  });
  try {
    await app.listen(opts.port, opts.host);
  } catch (err) {
    throw new Error(`comet ${opts.tls ? 'wss' : 'ws'} cannot listen on ${opts.host}:${opts.port}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    port: app.port,
    close: async () => {
      app.close();
      for (const ws of sockets) ws.destroy();
    },
  };
}

/** uWS writes IPv6 (and v4-mapped) addresses in full: 0000:…:ffff:7f00:0001. */
function normalizeIp(ip: string): string {
  const m = /^(?:0000:){5}ffff:([0-9a-f]{2})([0-9a-f]{2}):([0-9a-f]{2})([0-9a-f]{2})$/i.exec(ip);
  return m ? m.slice(1).map((h) => parseInt(h, 16)).join('.') : ip;
}
