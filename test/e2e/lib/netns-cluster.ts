/**
 * A controller on the host and one joined agent per network namespace: the multi-node fixture every
 * plugin's e2e tests start from.
 *
 *   const c = await startNetnsCluster({ nodes: 3, agent: () => ({ plugins: { prober: {} } }) });
 *   c.controller.url;                        // http://10.213.K.1:PORT (listening on the bridge)
 *   await c.cutOff(1); await c.waitState(1, 'down');
 *   await c.restore(1); await c.waitState(1, 'up');
 *   await c.stop();
 *
 * Agents run the real CLI (`ip netns exec op-K-nI node --import tsx scripts/outpost.ts agent ...`), each
 * on port 7071 of its own namespace, reachable from the host at `node.ip:7071` (agentUrl(i)).
 */
import { TestAgent, TestController, until, type AgentOpts, type ControllerOpts } from '../../helpers/cluster.ts';
import { createNetwork, type Network } from './netns.ts';

export interface Heartbeat {
  intervalMs: number;
  downAfter: number;
  upAfter: number;
}

export interface NetnsClusterOpts {
  /** Number of namespaces/agents; default 3. */
  nodes?: number;
  /** Default 500 ms × 3 down, 2 up: a 1.5 s watchdog window that slow CI still handles. */
  heartbeat?: Heartbeat;
  /** Extra controller options; `config` is merged over host/heartbeat. */
  controller?: ControllerOpts;
  /** Extra options per agent (plugins, labels, config); name/wrapper/address are filled in. */
  agent?: (index: number) => AgentOpts;
}

export interface NetnsCluster {
  net: Network;
  controller: TestController;
  agents: TestAgent[];
  heartbeat: Heartbeat;
  /** Node ids in namespace order. */
  nodeIds: string[];
  /** The agent's local API from the host, e.g. `http://10.213.K.11:7071`. */
  agentUrl(i: number): string;
  cutOff(i: number): Promise<void>;
  restore(i: number): Promise<void>;
  /** The node's state as the controller sees it (`up`, `down`, ...). */
  state(i: number): Promise<string | undefined>;
  /** Waits until the controller reports the state; resolves with the ms it took. */
  waitState(i: number, state: string, timeoutMs?: number): Promise<number>;
  /** Watchdog window measured from a cut: downAfter missed heartbeats plus one sweep (half an interval). */
  downWindowMs(): number;
  stop(): Promise<void>;
}

export const AGENT_PORT = 7071;

export async function startNetnsCluster(opts: NetnsClusterOpts = {}): Promise<NetnsCluster> {
  const count = opts.nodes ?? 3;
  const heartbeat = opts.heartbeat ?? { intervalMs: 500, downAfter: 3, upAfter: 2 };
  const net = await createNetwork({ nodes: count });
  const agents: TestAgent[] = [];
  let controller: TestController | undefined;
  const stop = async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    if (controller) await controller.stop().catch(() => undefined);
    await net.destroy();
  };
  try {
    controller = await TestController.start({
      ...opts.controller,
      config: { host: net.gatewayIp, heartbeat, ...opts.controller?.config },
    });
    const c = controller;
    // Joins run one after another: each spends a CPU-heavy tsx start, and the machine has 2 cores.
    for (const node of net.nodes) {
      const extra = opts.agent?.(node.index) ?? {};
      agents.push(
        await TestAgent.start(c, {
          name: `node${node.index}`,
          ...extra,
          wrapper: node.wrapper,
          config: { host: '0.0.0.0', port: AGENT_PORT, address: node.ip, ...extra.config },
        }),
      );
    }
    const cluster: NetnsCluster = {
      net,
      controller: c,
      agents,
      heartbeat,
      nodeIds: agents.map((a) => a.nodeId),
      agentUrl: (i) => `http://${net.nodes[i].ip}:${AGENT_PORT}`,
      cutOff: (i) => net.cutOff(i),
      restore: (i) => net.restore(i),
      state: async (i) => (await c.node(agents[i].nodeId))?.state,
      async waitState(i, state, timeoutMs = 30_000) {
        const t0 = Date.now();
        await until(`node${i} ${state} (controller ${c.url})`, async () => (await cluster.state(i)) === state, timeoutMs, 50);
        return Date.now() - t0;
      },
      downWindowMs: () => heartbeat.intervalMs * heartbeat.downAfter + heartbeat.intervalMs / 2,
      stop,
    };
    for (let i = 0; i < count; i++) await cluster.waitState(i, 'up');
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}
