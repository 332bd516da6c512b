/**
 * Listeners on a plugin's own ports (issue 10 §5): TCP through node:net, HTTP/WebSocket through
 * hyper-express. hyper-express (and with it the uWS native library) is imported on the first http()
 * call only, so an agent whose plugins never listen over HTTP never maps it. A listener owns every
 * connection it accepted: close() ends them too, so a stopped plugin leaves no socket behind.
 */
import { access, constants } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Server as HyperExpressServer } from 'hyper-express';
import type { Log } from '../plugins/sdk/log.ts';
import type { HttpListenOptions, Listener, TcpListenOptions } from '../plugins/sdk/contract.ts';
import type { ListenPort } from './context-parts.ts';

/** Bind errors in words, as an operator reads them in the plugin's failure reason. */
const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'address not available on this host',
  EINVAL: 'invalid address',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name not resolved (temporary failure)',
};

/** uWS listen option (its ListenOptions enum; the typings declare it where the module does not export it). */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

function bindError(plugin: string, opts: TcpListenOptions, err: NodeJS.ErrnoException | string): Error {
  const why = typeof err === 'string' ? err : (BIND_ERRORS[err.code ?? ''] ?? err.message);
  return new Error(`${plugin}: cannot listen on ${opts.host}:${opts.port}: ${why}`);
}

export function createListenPort(log: Log): ListenPort {
  return {
    tcp: (plugin, opts, onConnection) => listenTcp(plugin, opts, onConnection, log),
    http: (plugin, opts, setup) => listenHttp(plugin, opts, setup),
  };
}

async function listenTcp(plugin: string, opts: TcpListenOptions, onConnection: (socket: Socket) => void, log: Log): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A peer that resets the connection must not take the agent down with an unhandled 'error': the plugin may add its own listener.
    socket.on('error', (err) => log.debug({ plugin, err: err.message }, 'connection error'));
    try {
      onConnection(socket);
    } catch (err) {
      log.error({ plugin, err: (err as Error)?.message }, 'connection handler failed; closing the connection');
      socket.destroy();
    }
  });
  await bindNet(server, opts).catch((err: NodeJS.ErrnoException) => {
    throw bindError(plugin, opts, err);
  });
  server.on('error', (err) => log.error({ plugin, err: err.message }, 'listener error'));
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // server.close() waits for open connections to end by themselves: a stopped plugin ends them.
        for (const s of sockets) s.destroy();
      })),
  };
}

function bindNet(server: Server, opts: TcpListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port, host: opts.host, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function listenHttp(plugin: string, opts: HttpListenOptions, setup: (app: HyperExpressServer) => void): Promise<Listener> {
  if (opts.tls) await tlsFilesReadable(plugin, opts);
  const { default: HyperExpress } = await import('hyper-express');
  // auto_close off: hyper-express would otherwise hook SIGTERM and exit once per server it ever made.
  const app = new HyperExpress.Server({ auto_close: false, ...(opts.tls ? { cert_file_name: opts.tls.certFile, key_file_name: opts.tls.keyFile } : {}) });
  const native = app.uws_instance as unknown as { listen(...args: unknown[]): void; close(): void };
  // uWS binds with SO_REUSEPORT by default: a second server on the same port (another agent on this host,
  // a plugin not yet stopped) would silently share its connections instead of failing. Bind exclusively.
  const listen = native.listen.bind(native);
  native.listen = (host: unknown, port: unknown, cb: unknown) => listen(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, cb);
  try {
    setup(app);
  } catch (err) {
    native.close();
    throw new Error(`${plugin}: setting up its HTTP listener on ${opts.host}:${opts.port} failed: ${(err as Error)?.message}`);
  }
  try {
    await app.listen(opts.port, opts.host);
  } catch (err) {
    native.close();
    // uWS says only that it got no socket; binding the same address with node:net names the reason.
    throw bindError(plugin, opts, err instanceof Error ? err.message.split('\n')[0] : await bindReason(opts));
  }
  let closed = false;
  return {
    port: app.port,
    async close() {
      if (closed) return;
      closed = true;
      // The native app's close() ends the listen socket and every connection it accepted (HTTP keep-alive and WebSocket alike).
      native.close();
    },
  };
}

/** hyper-express refuses unreadable PEM files with a dump of its options: name the file instead. */
async function tlsFilesReadable(plugin: string, opts: HttpListenOptions): Promise<void> {
  for (const [what, file] of [['certificate', opts.tls!.certFile], ['key', opts.tls!.keyFile]]) {
    try {
      await access(file, constants.R_OK);
    } catch (err) {
      throw bindError(plugin, opts, `TLS ${what} file ${file} is not readable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
}

/** Why host:port cannot be bound, found by trying it; uWS itself reports no reason. */
async function bindReason(opts: TcpListenOptions): Promise<string> {
  const probe = createServer();
  try {
    await bindNet(probe, opts);
    return 'the address could not be bound (it was free again when retried)';
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return BIND_ERRORS[e.code ?? ''] ?? e.message;
  } finally {
    probe.close();
  }
}
