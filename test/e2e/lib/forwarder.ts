/** A TCP forwarder on loopback whose target can be switched: what a load balancer with health checks does for agents. */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export async function forwarder(): Promise<{ url: string; to(port: number): void; close(): Promise<void> }> {
  let target = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(target, '127.0.0.1');
    for (const s of [client, up]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(up).pipe(client);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    to(port) {
      target = port;
      for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}
