/**
 * A TCP proxy on loopback that sends each new connection to the first controller of a list that accepts
 * it: what a TCP load balancer in failover mode does for agents. An agent whose controller dies is cut
 * off with it, reconnects through the proxy and lands on the next live one.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FailoverProxy {
  url: string;
  /** The ports in the order they are tried. */
  order(): number[];
  /** Adds a controller at the end of the list. */
  add(port: number): void;
  /** Puts `port` first and cuts the connections going elsewhere, so their agents relink to it. */
  prefer(port: number): void;
  /** Upstream port of each open connection. */
  upstreams(): number[];
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 1000;

function connectFirst(ports: number[]): Promise<{ socket: net.Socket; port: number } | undefined> {
  return new Promise((resolve) => {
    const tryAt = (i: number) => {
      if (i >= ports.length) return resolve(undefined);
      const s = net.connect(ports[i], '127.0.0.1');
      const fail = () => {
        s.destroy();
        tryAt(i + 1);
      };
      s.setTimeout(CONNECT_TIMEOUT_MS, fail);
      s.once('error', fail);
      s.once('connect', () => {
        s.setTimeout(0);
        s.removeListener('error', fail);
        resolve({ socket: s, port: ports[i] });
      });
    };
    tryAt(0);
  });
}

export async function failoverProxy(initial: number[]): Promise<FailoverProxy> {
  let ports = [...initial];
  const open = new Map<net.Socket, { up: net.Socket; port: number }>();
  const server = net.createServer((client) => {
    client.pause();
    client.on('error', () => undefined);
    void connectFirst(ports).then((found) => {
      if (!found || client.destroyed) {
        found?.socket.destroy();
        client.destroy();
        return;
      }
      const { socket: up, port } = found;
      up.on('error', () => undefined);
      open.set(client, { up, port });
      client.on('close', () => {
        open.delete(client);
        up.destroy();
      });
      up.on('close', () => client.destroy());
      client.pipe(up).pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    order: () => [...ports],
    add(port) {
      ports.push(port);
    },
    prefer(port) {
      ports = [port, ...ports.filter((p) => p !== port)];
      for (const [client, { port: p }] of open) if (p !== port) client.destroy();
    },
    upstreams: () => [...open.values()].map((o) => o.port),
    close: () =>
      new Promise<void>((r) => {
        for (const client of open.keys()) client.destroy();
        server.close(() => r());
      }),
  };
}
