import type { NodeInfo } from '../plugins/sdk/contract.ts';
import type { EventBus } from '../runtime/events.ts';
import type { NodeDirectory } from '../runtime/controller-runtime.ts';
import type { Registry } from './registry.ts';

/** The registry (and its node.up / node.down bus events) as the plugins' node directory. */
export function nodeDirectory(registry: Registry, bus: EventBus): NodeDirectory {
  return {
    list: () => registry.list(),
    get: (id) => registry.get(id),
    resolve: (ref) => registry.resolve(ref),
    defaultNode: () => registry.defaultNode(),
    require: (ref, plugin) => registry.require(ref, plugin),
    on: (event, handler) => bus.on(`node.${event}`, (p) => handler((p as { node: NodeInfo }).node)),
  };
}
