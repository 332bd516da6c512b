import { HttpError } from './http.ts';
import type { NodeInfo } from './contract.ts';

/**
 * Why `ctx.nodes.require(ref, plugin)` refused: no such node, no node named where several exist,
 * the node's agent has no link, or the plugin is not running there. It is an HttpError, so a route
 * handler may let it through and its envelope answers with `status` and the message.
 */
export class NodeUnavailable extends HttpError {
  constructor(
    readonly reason: 'unknown' | 'unnamed' | 'down' | 'plugin',
    status: number,
    message: string,
    readonly node?: NodeInfo,
  ) {
    super(status, message);
  }
}

/** The one wording for a node whose agent has no link, shared by `require` and the command RPC. */
export function nodeDownMessage(name: string): string {
  return `node ${name} is down: its agent is not connected`;
}
