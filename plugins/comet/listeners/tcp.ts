import { createServer, type Socket } from 'node:net';
import { FrameStream } from '../protocol/stream-decoder.ts';
import type { PushBytes } from '../protocol/push-bytes.ts';
import type { Gateway } from '../gateway/gateway.ts';
import type { Transport } from '../gateway/transport.ts';
import type { Listening, ListenOptions } from './listening.ts';

/** goim's TCP transport: the byte stream of frames; pushes arrive as bare inner frames (no op 9). */
class TcpTransport implements Transport {
  readonly kind = 'tcp';
  readonly ip: string;

  constructor(
    private readonly sock: Socket,
    private readonly limit: number,
  ) {
    this.ip = plainIp(sock.remoteAddress ?? '');
  }

  reply(frame: Buffer): boolean {
    return this.write(frame);
  }

  push(p: PushBytes): boolean {
    return this.write(p.tcp);
  }

  private write(bytes: Buffer): boolean {
    if (this.sock.writableLength > this.limit) return false;
    this.sock.write(bytes);
    return true;
  }

  buffered(): number {
    return this.sock.writableLength;
  }

  close(): void {
    // goim closes the socket; no error frame, no half-close.
    this.sock.destroy();
  }
}

/** Serves one accepted TCP connection (what the SDK's `ctx.listen.tcp` hands over). */
export function attachTcp(sock: Socket, gateway: Gateway): void {
  sock.setNoDelay(true);
  sock.on('error', () => {});
  const session = gateway.open(new TcpTransport(sock, gateway.opts.sendBufferBytes));
  if (!session) return;
  const stream = new FrameStream();
  const onFrame = session.onFrame.bind(session);
  sock.on('data', (chunk: Buffer) => {
    const err = stream.push(chunk, onFrame);
    if (err) session.onFrameError(err);
  });
  sock.on('close', () => session.close('peer'));
}

export async function listenTcp(opts: ListenOptions, gateway: Gateway): Promise<Listening> {
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    attachTcp(sock, gateway);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`comet tcp cannot listen on ${opts.host}:${opts.port}: ${err.message}`)));
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
