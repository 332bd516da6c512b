/**
 * Commands, best-effort messages and plugins' peer calls for nodes and plugins on other controllers
 * sharing the database. A node linked here is served here as on a single controller; one linked to
 * another live controller (link presence) is forwarded to it over the internal endpoint, and that
 * controller's answer — the result, or the error with its message and status — is the answer here.
 * Messages are batched per peer, one call in flight per peer (so they stay in order), and counted
 * as taken once handed over.
 */
import type { Log } from '../../plugins/sdk/log.ts';
import type { Counter } from '../../plugins/sdk/metrics.ts';
import type { PeerAnswer } from '../../plugins/sdk/contract.ts';
import { HttpError } from '../../plugins/sdk/http.ts';
import type { ChannelPort, PeerPort } from '../../runtime/context-parts.ts';
import { encodeMessage } from '../../runtime/link-codec.ts';
import type { PeerClient } from '../../runtime/cluster/peer-client.ts';
import { decodeReply, encodeOp, type PeerOp, type SendItem } from './protocol.ts';

export interface ForwardingDeps {
  self: string;
  /** Whether this controller holds the node's link. */
  linkedHere(nodeId: string): boolean;
  /** The other live controller holding the node's link. */
  linkedAt(nodeId: string): { controller: string } | undefined;
  /** Other live controllers, where they answer and how many links they hold. */
  peers(): Array<{ id: string; url?: string; links: number }>;
  /** The node's name, for messages. */
  nodeName(nodeId: string): string | undefined;
  /** Commands and messages for nodes linked here. */
  local: { command(nodeId: string, plugin: string, action: string, args: unknown, timeoutMs: number): Promise<unknown>; channels: ChannelPort };
  /** A plugin's onPeer here. */
  peerCall(plugin: string, method: string, body: unknown, from: string): Promise<unknown>;
  client: PeerClient;
  log: Log;
  calls: Counter;
}

/** Time a peer gets beyond a command's own deadline to send back that command's timeout error. */
const ANSWER_MARGIN_MS = 1000;
/** Messages waiting for one peer; past this, new ones are dropped (and counted as not taken). */
const MAX_QUEUED = 10_000;
/** A batch of messages is cut at about this many bytes (a call carries at most PEER_MAX_BODY). */
const BATCH_BYTES = 4 * 1024 * 1024;
/** Deadline of a batch of messages. */
const SEND_TIMEOUT_MS = 10_000;

interface Lane {
  items: Array<{ item: SendItem; bytes: number }>;
  busy: boolean;
  /** Whether the last batch failed (logged once per outage). */
  failing: boolean;
}

export class Forwarding {
  private readonly lanes = new Map<string, Lane>();
  private closed = false;

  constructor(private readonly d: ForwardingDeps) {}

  /** ctx.command and every core path that talks to one node. */
  async command(nodeId: string, plugin: string, action: string, args: unknown, timeoutMs: number): Promise<unknown> {
    const { d } = this;
    const url = d.linkedHere(nodeId) ? undefined : this.urlOf(d.linkedAt(nodeId)?.controller);
    // Not linked anywhere (or its controller gave no address): the local path says why, as it always did.
    if (!url) return d.local.command(nodeId, plugin, action, args, timeoutMs);
    const controller = d.linkedAt(nodeId)!.controller;
    const reply = await this.post(controller, url, { op: 'command', node: nodeId, plugin, action, args, timeoutMs }, timeoutMs + ANSWER_MARGIN_MS, () => `node ${d.nodeName(nodeId) ?? nodeId} is linked to controller ${controller}, which`);
    if (reply.ok) return reply.result;
    throw reply.status !== undefined ? new HttpError(reply.status, reply.error) : new Error(reply.error);
  }

  /** The channel port plugins use: nodes linked elsewhere get their messages through their controller. */
  channels(): ChannelPort {
    const { local } = this.d;
    return {
      send: (plugin, nodeId, type, msg) => {
        const at = this.d.linkedHere(nodeId) ? undefined : this.d.linkedAt(nodeId);
        if (!at) return local.channels.send(plugin, nodeId, type, msg);
        return this.enqueue(at.controller, { plugin, type, msg, nodes: [nodeId] });
      },
      broadcast: (plugin, nodeIds, type, msg) => {
        if (nodeIds === 'all') {
          let n = local.channels.broadcast(plugin, 'all', type, msg);
          for (const p of this.d.peers()) if (p.links > 0 && this.enqueue(p.id, { plugin, type, msg, nodes: 'all' })) n += p.links;
          return n;
        }
        const here: string[] = [];
        const elsewhere = new Map<string, string[]>();
        for (const id of nodeIds) {
          const at = this.d.linkedHere(id) ? undefined : this.d.linkedAt(id);
          if (!at) here.push(id);
          else {
            const list = elsewhere.get(at.controller);
            if (list) list.push(id);
            else elsewhere.set(at.controller, [id]);
          }
        }
        // With nobody elsewhere this is exactly the single controller's broadcast (its drop counts included).
        let n = here.length || elsewhere.size === 0 ? local.channels.broadcast(plugin, here, type, msg) : 0;
        for (const [controller, nodes] of elsewhere) if (this.enqueue(controller, { plugin, type, msg, nodes })) n += nodes.length;
        return n;
      },
      onMessage: (plugin, handler) => local.channels.onMessage(plugin, handler),
    };
  }

  /** ctx.peers, for every plugin (the runner binds the plugin's name). */
  peerPort(): PeerPort {
    const call = async (controller: string, plugin: string, method: string, body: unknown, timeoutMs: number): Promise<unknown> => {
      const url = this.urlOf(controller);
      if (!url) throw new Error(`controller ${controller} is not a live peer of this one`);
      const reply = await this.post(controller, url, { op: 'call', plugin, method, body }, timeoutMs, () => `controller ${controller}`);
      if (!reply.ok) throw new Error(`controller ${controller} answered ${method} with an error: ${reply.error}`);
      return reply.result;
    };
    return {
      self: () => this.d.self,
      list: () => this.d.peers().map((p) => ({ id: p.id })),
      call,
      broadcast: (plugin, method, body, timeoutMs) =>
        Promise.all(
          this.d.peers().map((p) =>
            call(p.id, plugin, method, body, timeoutMs).then(
              (result): PeerAnswer => ({ controller: p.id, ok: true, result }),
              (err: Error): PeerAnswer => ({ controller: p.id, ok: false, error: err.message }),
            ),
          ),
        ),
    };
  }

  /** A call from another controller (authenticated by the endpoint). Never forwards again: no loops. */
  async handle(op: PeerOp, from: string): Promise<unknown> {
    switch (op.op) {
      case 'call':
        return this.d.peerCall(op.plugin, op.method, op.body, from);
      case 'command':
        return this.d.local.command(op.node, op.plugin, op.action, op.args, op.timeoutMs);
      case 'send': {
        let taken = 0;
        for (const it of op.items) {
          try {
            taken += this.d.local.channels.broadcast(it.plugin, it.nodes, it.type, it.msg);
          } catch (err) {
            this.d.log.warn({ plugin: it.plugin, type: it.type, from, err: (err as Error).message }, 'message from another controller not sent');
          }
        }
        return { taken };
      }
    }
  }

  close(): void {
    this.closed = true;
    this.lanes.clear();
    this.d.client.close();
  }

  private urlOf(controller: string | undefined): string | undefined {
    return controller === undefined ? undefined : this.d.peers().find((p) => p.id === controller)?.url;
  }

  /**
   * Posts op and decodes the answer; a call that failed as such (unreachable, refused, no answer)
   * rejects with `${who()} could not be reached: …` / `did not answer: …`.
   */
  private async post(controller: string, url: string, op: PeerOp, timeoutMs: number, who: () => string): Promise<ReturnType<typeof decodeReply>> {
    const body = encodeOp(op);
    let answer: Buffer;
    try {
      answer = await this.d.client.post(url, body, timeoutMs);
    } catch (err) {
      this.d.calls.inc({ op: op.op, outcome: 'failed' });
      throw new Error(`${who()} could not be reached: ${(err as Error).message}`);
    }
    try {
      const reply = decodeReply(answer);
      this.d.calls.inc({ op: op.op, outcome: reply.ok ? 'ok' : 'error' });
      return reply;
    } catch (err) {
      this.d.calls.inc({ op: op.op, outcome: 'failed' });
      throw new Error(`${who()} sent back an answer that cannot be read: ${(err as Error).message} (controller ${controller})`);
    }
  }

  /** Queues a message for a peer; false when dropped (queue full, or it cannot cross at all). */
  private enqueue(controller: string, item: SendItem): boolean {
    if (this.closed) return false;
    // Encoded here for its size and to refuse at once what the link could never carry, as a local send does.
    const bytes = encodeMessage(item.plugin, item.type, item.msg).bytes;
    let lane = this.lanes.get(controller);
    if (!lane) this.lanes.set(controller, (lane = { items: [], busy: false, failing: false }));
    if (lane.items.length >= MAX_QUEUED) {
      this.d.calls.inc({ op: 'send', outcome: 'dropped' });
      return false;
    }
    lane.items.push({ item, bytes });
    if (!lane.busy) {
      lane.busy = true;
      setImmediate(() => void this.flush(controller, lane));
    }
    return true;
  }

  private async flush(controller: string, lane: Lane): Promise<void> {
    while (lane.items.length && !this.closed) {
      let size = 0;
      let n = 0;
      while (n < lane.items.length && n < 10_000 && (n === 0 || size + lane.items[n].bytes <= BATCH_BYTES)) size += lane.items[n++].bytes;
      const batch = lane.items.splice(0, n).map((x) => x.item);
      const url = this.urlOf(controller);
      try {
        if (!url) throw new Error('it is no longer a live peer');
        const reply = await this.post(controller, url, { op: 'send', items: batch }, SEND_TIMEOUT_MS, () => `controller ${controller}`);
        if (!reply.ok) throw new Error(reply.error);
        if (lane.failing) this.d.log.info({ controller }, 'messages reach the other controller again');
        lane.failing = false;
      } catch (err) {
        if (!lane.failing) this.d.log.warn({ controller, messages: batch.length, err: (err as Error).message }, 'messages for nodes linked to another controller were lost');
        lane.failing = true;
      }
    }
    lane.busy = false;
    if (this.lanes.get(controller) === lane && lane.items.length === 0) this.lanes.delete(controller);
  }
}
