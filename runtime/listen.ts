/**
 * Listeners on a plugin's own ports: node:net for TCP, hyper-express for HTTP/WebSocket. The HTTP
 * server module is imported on the first http() call only, so an agent whose plugins never call it
 * maps no uWS library.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Listener } from '../plugins/sdk/contract.ts';
import type { ListenPort } from './context-parts.ts';

export function createListenPort(): ListenPort {
  return {
    async tcp(plugin, opts, onConnection) {
      const sockets = new Set<Socket>();
      const server = createServer((socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        // An 'error' event with no listener would take the whole host down; the plugin may add its own.
        socket.on('error', () => undefined);
        onConnection(socket);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new Error(`plugin ${plugin} cannot listen on ${opts.host}:${opts.port}: ${err.message}`)));
        server.listen(opts.port, opts.host, () => resolve());
      });
      const listener: Listener = {
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((resolve) => {
            // Open connections would keep close() waiting forever; a stopped plugin drops them.
            for (const s of sockets) s.destroy();
            server.close(() => resolve());
          }),
      };
      return listener;
    },
    async http(plugin, opts, setup) {
      const [{ default: HyperExpress }, { listenHyperExpress }] = await Promise.all([import('hyper-express'), import('./http-server.ts')]);
      const app = new HyperExpress.Server(opts.tls ? { key_file_name: opts.tls.keyFile, cert_file_name: opts.tls.certFile } : {});
      try {
        setup(app);
        const port = await listenHyperExpress(app, opts.host, opts.port);
        return { port, close: async () => void app.close() };
      } catch (err) {
        app.close();
        throw new Error(`plugin ${plugin}: ${(err as Error).message}`);
      }
    },
  };
}
