import { bindQuery } from './gin-bind.ts';
import { bindError, OK, result, type GoimResult } from './envelope.ts';
import type { CometNode, GoimContext, GoimRequest } from './context.ts';
import type { BalancedNode } from '../logic/balancer.ts';
import type { NodeMeta } from '../logic/routing.ts';

/** goim's nodes handlers (internal/logic/nodes.go): where clients should connect. */

/**
 * Live comet nodes with what they reported. A node whose gateway has not sent its first snapshot is
 * left out, as goim's discovery lists a comet only once it registered: its ports are not known yet.
 */
function reported(ctx: GoimContext): Array<{ node: CometNode; meta: NodeMeta; conns: number; ips: number; version: number; updatedAt: number }> {
  return ctx.pusher.nodes().flatMap((node) => {
    const s = ctx.counts.nodeStats(node.id);
    return s?.meta ? [{ node, meta: s.meta, conns: s.conns, ips: s.ips, version: s.version, updatedAt: s.updatedAt }] : [];
  });
}

export function nodesWeighted(req: GoimRequest, ctx: GoimContext): GoimResult {
  const b = bindQuery(req.queryAll, { platform: { form: 'platform', go: 'Platform', type: 'string' } });
  if (!b.ok) return bindError(b.message);
  const cfg = ctx.config;
  ctx.balancer.update(
    reported(ctx).map((r): BalancedNode => ({ id: r.node.id, hostname: r.node.name, addrs: r.meta.addrs, weight: r.meta.weight, conns: r.conns, version: r.version })),
  );
  const { domains, addrs } = ctx.balancer.pick(cfg.nodes.hostDomain ?? '');
  // goim answers host names to web clients; without a host domain configured, addresses are all there is.
  let nodes = b.v.platform === 'web' && cfg.nodes.hostDomain !== undefined ? domains : addrs;
  if (nodes.length === 0) nodes = cfg.nodes.domain ? [cfg.nodes.domain] : [];
  // NodesReply field order, every field omitempty.
  const data: Record<string, unknown> = {};
  if (cfg.nodes.domain) data.domain = cfg.nodes.domain;
  if (cfg.tcp.enabled && cfg.tcp.port) data.tcp_port = cfg.tcp.port;
  if (cfg.ws.enabled && cfg.ws.port) data.ws_port = cfg.ws.port;
  if (cfg.wss?.port) data.wss_port = cfg.wss.port;
  data.heartbeat = cfg.heartbeat.seconds;
  if (nodes.length > 0) data.nodes = nodes;
  const backoff: Record<string, number> = {};
  if (cfg.backoff.maxDelay) backoff.max_delay = cfg.backoff.maxDelay;
  if (cfg.backoff.baseDelay) backoff.base_delay = cfg.backoff.baseDelay;
  if (cfg.backoff.factor) backoff.factor = cfg.backoff.factor;
  if (cfg.backoff.jitter) backoff.jitter = cfg.backoff.jitter;
  data.backoff = backoff;
  data.heartbeat_max = cfg.heartbeat.max;
  return result(OK, data);
}

/** discovery's naming.Instance per live comet node; metadata values are strings, as discovery stores them. */
export function nodesInstances(_req: GoimRequest, ctx: GoimContext): GoimResult {
  const cfg = ctx.config;
  const data = reported(ctx).map(({ node, meta, conns, ips, updatedAt }) => ({
    region: node.labels.region ?? '',
    zone: node.labels.zone ?? '',
    env: node.labels.env ?? '',
    appid: 'goim.comet',
    hostname: node.name,
    addrs: meta.addrs.flatMap((a) => [
      ...(cfg.tcp.enabled ? [`tcp://${a}:${meta.tcpPort ?? cfg.tcp.port}`] : []),
      ...(cfg.ws.enabled ? [`ws://${a}:${meta.wsPort ?? cfg.ws.port}/sub`] : []),
      ...(cfg.wss ? [`wss://${a}:${meta.wssPort ?? cfg.wss.port}/sub`] : []),
    ]),
    version: node.version ?? meta.version ?? '',
    latest_timestamp: updatedAt * 1e6,
    metadata: { addrs: meta.addrs.join(','), conn_count: String(conns), ip_count: String(ips), offline: 'false', weight: String(meta.weight) },
  }));
  return result(OK, data);
}
