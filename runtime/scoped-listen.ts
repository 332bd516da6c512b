import type { ListenContext, Listener } from '../plugins/sdk/contract.ts';
import type { ListenPort } from './context-parts.ts';
import type { Scope } from './scope.ts';

/** A plugin's listeners on either host: opened through the host's ListenPort, closed when the plugin stops. */
export function scopedListen(plugin: string, scope: Scope, port: ListenPort): ListenContext {
  const listener = async (what: string, open: () => Promise<Listener>): Promise<Listener> => {
    scope.assertOpen(`listen on ${what}`);
    const l = await open();
    const close = scope.add(`listener ${what}`, () => l.close());
    return { port: l.port, close };
  };
  return {
    tcp: (opts, onConnection) => listener(`tcp ${opts.host}:${opts.port}`, () => port.tcp(plugin, opts, onConnection)),
    http: (opts, setup) => listener(`http ${opts.host}:${opts.port}`, () => port.http(plugin, opts, setup)),
  };
}
