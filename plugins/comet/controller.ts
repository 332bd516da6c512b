import { defineController, type NodeInfo } from '../sdk/index.ts';
import { adminRoutes } from './api/admin.ts';
import type { CometNode, GoimContext, Pusher } from './api/context.ts';
import { goimHttpRoutes } from './api/http-routes.ts';
import { Balancer } from './logic/balancer.ts';
import { ClusterCounts } from './logic/cluster-counts.ts';
import type { NodeSender } from './logic/local-push.ts';
import { NodeCounters } from './logic/node-counters.ts';
import { PresenceIntake } from './logic/presence-intake.ts';
import { RoomCountSync } from './logic/room-count-sync.ts';
import { RoutingTable } from './logic/routing.ts';
import type { PushMsg } from './messages.ts';
import { cometPanel } from './panel.ts';
import { CometPeering, nodeReports } from './peering.ts';
import { spec } from './spec.ts';
import { cometStatus } from './status.ts';

/** A node is asked for a snapshot at most this often (batches after a gap would each ask). */
const RESYNC_EVERY_MS = 2000;
/** How long a push's answer waits for the other controllers (and a count share for its peer). */
const PEER_TIMEOUT_MS = 2000;
/** Counts shared by a controller that has been silent this many refresh rounds (or 5 s, if longer) leave the totals. */
const PEER_STALE_ROUNDS = 5;

const cometState = (n: NodeInfo) => n.plugins.find((p) => p.name === 'comet')?.state;

/**
 * goim's logic and job on the controller: routing tables fed by the presence of the agents linked
 * here, goim's HTTP API, pushes to the nodes holding their targets over the best-effort channel (and
 * to the other controllers for theirs), cluster-wide room counts back to the nodes, metrics and the
 * dashboard panel.
 */
export default defineController(spec, (ctx) => {
  const routing = new RoutingTable();
  const balancer = new Balancer();
  const intake = new PresenceIntake(routing);
  const roomSync = new RoomCountSync();
  const counters = new NodeCounters();
  const resyncAsked = new Map<string, number>();
  const nameOf = (id: string) => ctx.nodes.get(id)?.name ?? id;

  const pushes = ctx.metrics.counter('outpost_comet_pushes_total', 'Pushes accepted by goim\'s HTTP API, by kind (keys, mids, room, all).');
  const delivered = ctx.metrics.counter('outpost_comet_messages_delivered_total', 'Messages written to client connections, per node (from its gateway).');
  const dropped = ctx.metrics.counter(
    'outpost_comet_messages_dropped_total',
    'Messages dropped, per node and reason: slow_consumer (a connection over its send buffer), link_down (no link to the node: one per key for key and mid pushes, one per node for room and all), refused (too large for the link).',
  );

  const peerFailures = ctx.metrics.counter('outpost_comet_peer_push_failures_total', 'Pushes another controller did not take (it did not answer in time or refused): the targets on its agents missed them.');

  /** Linked to this controller (alone, every linked node is): its presence feeds this controller's tables. */
  const linkedHere = (n: NodeInfo | undefined): n is NodeInfo => !!n && n.connected && (n.controller === undefined || n.controller === ctx.peers.self);
  /** Nodes clients may go to, whichever controller holds their link: linked, not declared down, comet running there. */
  const cometNodes = (): NodeInfo[] => ctx.nodes.list().filter((n) => n.connected && n.state !== 'down' && cometState(n) === 'running');

  function sendPush(nodeIds: string[], msg: PushMsg): void {
    const weight = msg.kind === 'keys' ? msg.keys.length : 1;
    // A node that relinked to another controller is reached through that one's tables, not forwarded from here (twice).
    const linked = nodeIds.filter((id) => {
      if (linkedHere(ctx.nodes.get(id))) return true;
      dropped.inc({ node: nameOf(id), reason: 'link_down' }, weight);
      return false;
    });
    if (linked.length === 0) return;
    try {
      const took = linked.length === 1 ? Number(ctx.send(linked[0], 'push', msg)) : ctx.broadcast(linked, 'push', msg);
      // A link that closed since the check above: the message is gone for it.
      if (took < linked.length) dropped.inc({ node: linked.length === 1 ? nameOf(linked[0]) : 'unknown', reason: 'link_down' }, weight * (linked.length - took));
    } catch (err) {
      // A RangeError naming the link's bound: the request was too large to carry, never a crash.
      for (const id of linked) dropped.inc({ node: nameOf(id), reason: 'refused' }, weight);
      ctx.log.warn({ err: (err as Error).message, kind: msg.kind }, 'comet push not sent');
    }
  }

  const sender: NodeSender = {
    localNodes: () => cometNodes().filter(linkedHere).map((n) => n.id),
    sendToNode: (nodeId, msg) => sendPush([nodeId], msg),
    broadcast: sendPush,
  };
  const peering = new CometPeering(ctx.peers, routing, sender, ctx.log, {
    self: ctx.peers.self,
    // Only a node still linked here: one that relinked elsewhere is told by the controller holding it now.
    kick: (nodeId, keys) => linkedHere(ctx.nodes.get(nodeId)) && ctx.send(nodeId, 'control', { t: 'kick', keys }),
    timeoutMs: PEER_TIMEOUT_MS,
    staleMs: Math.max(5000, PEER_STALE_ROUNDS * ctx.config.onlineRefreshMs),
    failed(controller, error) {
      peerFailures.inc();
      ctx.log.warn({ controller, err: error }, 'comet push not taken by another controller');
    },
  });
  const counts = new ClusterCounts(routing, peering.counts);
  const pusher: Pusher = {
    nodes: () => cometNodes().map((n): CometNode => ({ id: n.id, name: n.name, labels: n.labels, address: n.address })),
    push: (p) => peering.push(p),
  };
  const goim = (): GoimContext => ({ config: ctx.config, counts, balancer, pusher });
  const status = () => cometStatus(ctx.nodes.list(), counts, counters);

  function askResync(nodeId: string): void {
    const now = Date.now();
    if (now - (resyncAsked.get(nodeId) ?? 0) < RESYNC_EVERY_MS) return;
    resyncAsked.set(nodeId, now);
    ctx.send(nodeId, 'control', { t: 'resync' });
  }

  /** Gone from the tables at once: pushes stop going there and its counts leave the totals. */
  function forgetNode(nodeId: string): void {
    routing.removeNode(nodeId);
    intake.forget(nodeId);
    roomSync.forget(nodeId);
  }

  /**
   * Every onlineRefreshMs: nodes whose link closed here (or whose comet failed or was removed) leave
   * the tables; comet nodes linked here the tables miss are asked for a snapshot; each node gets the
   * cluster-wide counts of its rooms that changed (its op-3 replies).
   */
  function refresh(): void {
    const nodes = new Map(ctx.nodes.list().map((n) => [n.id, n]));
    for (const id of routing.nodeIds()) {
      const n = nodes.get(id);
      const state = n && cometState(n);
      if (!linkedHere(n) || state === 'failed' || state === undefined) forgetNode(id);
    }
    for (const n of nodes.values()) if (linkedHere(n) && cometState(n) === 'running' && !routing.hasNode(n.id)) askResync(n.id);
    for (const id of routing.nodeIds()) {
      for (const c of roomSync.changes(id, counts.roomCountsFor(id))) {
        if (!ctx.send(id, 'control', { t: 'rooms', counts: c })) roomSync.forget(id);
      }
    }
  }

  return {
    start() {
      ctx.routes.mount([...goimHttpRoutes(goim, () => ctx.config.open, (kind) => pushes.inc({ kind })), ...adminRoutes(goim, status)]);
      ctx.metrics.gaugeFn('outpost_comet_connections', 'Authenticated client connections, per node.', () => routing.nodeIds().map((id) => [{ node: nameOf(id) }, routing.nodeStats(id)?.conns ?? 0]));
      ctx.metrics.gaugeFn('outpost_comet_client_ips', 'Distinct client IP addresses, per node.', () => routing.nodeIds().map((id) => [{ node: nameOf(id) }, routing.nodeStats(id)?.ips ?? 0]));
      ctx.metrics.gaugeFn('outpost_comet_rooms', 'Rooms with at least one connection, per node.', () => routing.nodeIds().map((id) => [{ node: nameOf(id) }, routing.nodeStats(id)?.rooms ?? 0]));
      ctx.metrics.gaugeFn('outpost_comet_cluster_rooms', 'Rooms with at least one connection anywhere (every controller\'s nodes).', () => counts.allRoomCounts().size);
      ctx.nodes.on('down', (n) => forgetNode(n.id));
      ctx.nodes.on('up', (n) => {
        if (linkedHere(n)) askResync(n.id);
      });
      ctx.schedule.every(ctx.config.onlineRefreshMs, refresh);
      // Its own timer: a slow or dead peer delays the next share, never the op-3 counts of this one's nodes.
      ctx.schedule.every(ctx.config.onlineRefreshMs, () => peering.share(() => nodeReports(routing, (id) => counters.latest(id))));
      // After a controller restart the tables are empty: every gateway linked here sends its snapshot.
      const linked = cometNodes().filter(linkedHere).map((n) => n.id);
      if (linked.length > 0) ctx.broadcast(linked, 'control', { t: 'resync' });
    },
    onMessage: {
      presence(nodeId, m) {
        if (m.t === 'changes') peering.noteChanges(nodeId, m.batch.upserts);
        const r = intake.apply(nodeId, m);
        // The ack comes after the batch is in the tables: the agent writes op 8 once it arrives.
        if (r.ack) ctx.send(nodeId, 'control', { t: 'ack', ...r.ack });
        if (r.snapshot) roomSync.forget(nodeId);
        if (r.resync) askResync(nodeId);
        const kicks = new Map<string, string[]>();
        for (const d of r.displaced) kicks.set(d.nodeId, [...(kicks.get(d.nodeId) ?? []), d.key]);
        for (const [older, keys] of kicks) ctx.send(older, 'control', { t: 'kick', keys });
      },
      stats(nodeId, s) {
        const d = counters.apply(nodeId, s);
        const node = nameOf(nodeId);
        if (d.delivered) delivered.inc({ node }, d.delivered);
        if (d.dropped) dropped.inc({ node, reason: 'slow_consumer' }, d.dropped);
      },
    },
    onPeer: peering.handlers,
    panel: cometPanel(status),
  };
});
