import { HttpError } from '../plugins/sdk/http.ts';
import type { NodeInfo } from '../plugins/sdk/contract.ts';
import type { EventBus } from '../runtime/events.ts';
import type { NodeDirectory } from '../runtime/controller-runtime.ts';
import type { Registry } from './registry.ts';

type RegistryNode = ReturnType<Registry['list']>[number];

/** A registry node as plugins see it: the registry does not track since-when or capabilities yet. */
function view(n: RegistryNode): NodeInfo {
  return { ...n, since: null, caps: {} };
}

/** The registry (and its node.up / node.down bus events) as the plugins' node directory. */
export function nodeDirectory(registry: Registry, bus: EventBus): NodeDirectory {
  const maybe = (n: RegistryNode | undefined) => (n ? view(n) : undefined);
  const dir: NodeDirectory = {
    list: () => registry.list().map(view),
    get: (id) => maybe(registry.get(id)),
    resolve: (ref) => maybe(registry.resolve(ref)),
    defaultNode: () => maybe(registry.defaultNode()),
    require(ref, plugin) {
      const node = ref ? dir.resolve(ref) : dir.defaultNode();
      if (!node) {
        if (ref) throw new HttpError(404, `unknown node "${ref.slice(0, 80)}"`);
        throw new HttpError(400, registry.list().length ? 'several nodes are enrolled: name one with the "node" parameter' : 'no node is enrolled yet');
      }
      // The link is what counts: a node connected but not yet counted "up" takes commands.
      if (!node.connected) throw new HttpError(503, `node ${node.name} is down: its agent is not connected`);
      const p = node.plugins.find((x) => x.name === plugin);
      if (!p) throw new HttpError(503, `${plugin} is not enabled on node ${node.name}`);
      if (p.state !== 'running') throw new HttpError(503, `${plugin} on node ${node.name} is ${p.state}${p.error ? `: ${p.error}` : ''}`);
      return node;
    },
    on: (event, handler) => bus.on(`node.${event}`, (p) => handler(view((p as { node: RegistryNode }).node))),
  };
  return dir;
}
