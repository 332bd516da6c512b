import { defineAgent, VERSION } from '../sdk/index.ts';
import { gatewayOptions, type CometConfig } from './config.ts';
import { Gateway } from './gateway/gateway.ts';
import { createTokenCheck } from './gateway/jwt.ts';
import { attachTcp } from './listeners/tcp.ts';
import { mountSub } from './listeners/ws.ts';
import type { NodeMeta } from './logic/routing.ts';
import { applyPush } from './messages.ts';
import { spec } from './spec.ts';
import { Uplink } from './uplink.ts';

/** How often the gateway's counters go to the controller (when they changed). */
const STATS_EVERY_MS = 1000;

/** Where clients should dial this node: the configured public address, the listen host when it is one, else the node's address. */
function publicAddress(cfg: CometConfig, nodeAddress: string): string {
  if (cfg.nodes.publicAddress) return cfg.nodes.publicAddress;
  return cfg.host === '0.0.0.0' || cfg.host === '::' ? nodeAddress || cfg.host : cfg.host;
}

/**
 * goim's comet on this node: the gateway on its own ports (WebSocket `/sub`, TCP, optional WSS),
 * its change feed to the controller (op 8 waits for the controller's ack of the batch carrying the
 * connection), pushes from the controller into the gateway.
 */
export default defineAgent(spec, (ctx) => {
  let gateway: Gateway | undefined;
  let uplink: Uplink | undefined;
  const ports: { tcp?: number; ws?: number; wss?: number } = {};

  const meta = (): NodeMeta => ({
    addrs: [publicAddress(ctx.config, ctx.node.address)],
    tcpPort: ports.tcp,
    wsPort: ports.ws,
    wssPort: ports.wss,
    weight: ctx.config.nodes.weight,
    version: VERSION,
  });

  function resync(): void {
    if (gateway && uplink) uplink.snapshot(gateway.snapshot());
  }

  return {
    async start() {
      const cfg = ctx.config;
      const check = cfg.auth.jwt ? await createTokenCheck(cfg.auth.jwt) : undefined;
      const up = (uplink = new Uplink((m) => ctx.send('presence', m), meta, (msg) => ctx.log.warn(msg)));
      const g = (gateway = new Gateway(gatewayOptions(cfg, check), ctx.log, { onChanges: up.changes }));
      if (cfg.ws.enabled) ports.ws = (await ctx.listen.http({ host: cfg.host, port: cfg.ws.port }, (app) => mountSub(app, g))).port;
      if (cfg.wss) {
        const tls = { certFile: cfg.wss.cert, keyFile: cfg.wss.key };
        ports.wss = (await ctx.listen.http({ host: cfg.host, port: cfg.wss.port, tls }, (app) => mountSub(app, g))).port;
      }
      if (cfg.tcp.enabled) ports.tcp = (await ctx.listen.tcp({ host: cfg.host, port: cfg.tcp.port }, (sock) => attachTcp(sock, g))).port;
      ctx.log.info({ host: cfg.host, ...ports }, 'comet gateway listening');
      // The controller learns this node (and its ports) now, not at its first connection.
      resync();
      ctx.schedule.every(cfg.resyncMs, resync);
      ctx.schedule.every(STATS_EVERY_MS, () => {
        const { handshaking, rooms } = g.counts();
        up.stats({ epoch: g.feed.epoch, delivered: g.stats.delivered, dropped: g.stats.dropped, handshaking, rooms }, (s) => ctx.send('stats', s));
      });
    },
    stop() {
      gateway?.close();
      uplink?.close();
    },
    onMessage: {
      push: (m) => {
        if (gateway) applyPush(gateway, m);
      },
      control: (m) => {
        const g = gateway;
        if (!g) return;
        if (m.t === 'ack') uplink?.acked(m.epoch, g.feed.epoch, m.seq);
        else if (m.t === 'rooms') g.updateRoomCounts(m.counts);
        else if (m.t === 'kick') for (const key of m.keys) g.kick(key);
        else resync();
      },
    },
  };
});
