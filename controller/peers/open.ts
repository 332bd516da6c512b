/**
 * Wires forwarding between controllers sharing a database: the shared secret, the keep-alive client,
 * the internal endpoint on the controller's own server, and what forwarding needs of the controller.
 */
import type HyperExpress from 'hyper-express';
import type { Log } from '../../plugins/sdk/log.ts';
import type { MetricsRegistry } from '../../plugins/sdk/metrics.ts';
import type { ChannelHub } from '../../runtime/channels.ts';
import { clusterSecret } from '../../runtime/cluster/peer-secret.ts';
import { PeerClient } from '../../runtime/cluster/peer-client.ts';
import type { ControllerCluster } from '../cluster.ts';
import type { LinkServer } from '../link-server.ts';
import type { ControllerPluginHost } from '../plugin-host.ts';
import type { Registry } from '../registry.ts';
import { mountPeerEndpoint } from './endpoint.ts';
import { Forwarding } from './forwarding.ts';

export interface ForwardingWiring {
  dataDir: string;
  cluster: ControllerCluster;
  registry: Registry;
  link: LinkServer;
  channels: ChannelHub;
  /** Built after forwarding (it takes forwarding's ports); called only once calls arrive. */
  plugins: () => ControllerPluginHost;
  app: HyperExpress.Server;
  metrics: MetricsRegistry;
  log: Log;
}

export async function openForwarding(w: ForwardingWiring): Promise<Forwarding> {
  const secret = await clusterSecret(w.dataDir);
  const client = new PeerClient(w.cluster.id, secret);
  const forwarding = new Forwarding({
    self: w.cluster.id,
    linkedHere: (id) => w.link.isConnected(id),
    linkedAt: (id) => w.cluster.linkedAt(id),
    peers: () => w.cluster.peers(),
    nodeName: (id) => w.registry.record(id)?.name,
    local: { command: (...a) => w.link.command(...a), channels: w.channels },
    peerCall: (plugin, method, body, from) => w.plugins().peerCall(plugin, method, body, from),
    client,
    log: w.log,
    calls: w.metrics.counter('outpost_peer_calls_total', 'Calls to other controllers (forwarded commands, message batches, plugin peer calls), by op and outcome.'),
  });
  const served = w.metrics.counter('outpost_peer_served_total', 'Calls from other controllers, by op (refused: bad signature or body) and status.');
  mountPeerEndpoint(w.app, { secret, handle: (op, from) => forwarding.handle(op, from), log: w.log, observe: (op, status) => served.inc({ op, status: String(status) }) });
  return forwarding;
}
