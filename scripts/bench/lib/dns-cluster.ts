/**
 * The failover part of the dns-sync benchmark: a real controller with the default watchdog (2 s
 * beats, down after 3 missed), `agents` agent processes, dns-sync writing `services` services × 6
 * lines to a real PowerDNS. A kill is a SIGKILL of an agent process; a revive restarts it and waits
 * until its lines are home again (upAfter), so rounds do not overlap. Each round's time, from the
 * SIGKILL to dig answering a survivor, is split into detection (SIGKILL → the node's down time in
 * the registry) and decision + write (dns-sync's decision lag gauge: node.down → lines read back).
 */
import { TestAgent, TestController, until } from '../../../test/helpers/cluster.ts';
import type { Pdns } from '../../../test/e2e/lib/pdns.ts';
import { ISPS } from '../../../plugins/dns-sync/lines.ts';
import type { FailoverRound } from './dns-failover.ts';

export const CLUSTER_ZONE = 'failover.test';
/** Short, so a round does not wait long for its lines to come home; the failover does not depend on it. */
const UP_AFTER_S = 3;

/** Node i serves default on even i, and one or two ISP lines, so every line has an owner and a default fallback. */
function declaration(i: number, agents: number) {
  const lines = ISPS.filter((x) => x !== 'default').filter((_, j) => j % agents === i);
  return { ISPs: [...(i % 2 === 0 ? ['default'] : []), ...lines], networkType: 'IPV4', address: `192.0.2.${101 + i}` };
}

export interface DnsCluster {
  round: FailoverRound;
  /** The agent holding the most lines now: the next victim. */
  busiest(): number;
  /** Per round: SIGKILL → node.down (the watchdog), node.down → its lines written and read back (ms), lines moved. */
  breakdown: Array<{ detectMs: number; switchMs: number; lines: number }>;
  stop(): Promise<void>;
}

interface LineRow {
  name: string;
  recordType: string;
  node: string | null;
}

export async function startDnsCluster(pdns: Pdns, opts: { agents: number; services: number }): Promise<DnsCluster> {
  await pdns.createZone(CLUSTER_ZONE);
  const names = Array.from({ length: opts.agents }, (_, i) => `kill-${i}`);
  const nodes = Object.fromEntries(names.map((n, i) => [n, declaration(i, opts.agents)]));
  const config = {
    providers: { pdns: { type: 'pdns', url: pdns.url, apiKey: pdns.apiKey } },
    services: Array.from({ length: opts.services }, (_, i) => ({ serviceName: `svc-${i}`, domain: CLUSTER_ZONE, record: `s${i}`, platformProvider: 'pdns', ttl: 60, lines: [...ISPS] })),
    nodes,
    upAfter: UP_AFTER_S,
  };
  const c = await TestController.start({ config: { heartbeat: { intervalMs: 2000, downAfter: 3, upAfter: 2 }, plugins: { prober: { apps: {} }, 'dns-sync': config } } });
  const agents: TestAgent[] = [];
  const stop = async () => {
    for (const a of agents) await a.stop();
    await c.stop();
  };
  try {
    for (const name of names) agents.push(await TestAgent.start(c, { name, plugins: { 'dns-sync': {} } }));
    const status = async () => (await c.api('GET', '/api/v1/dns-sync/status')).body as { lines: LineRow[]; pendingWrites: number; lastPass: { at: number } | null };
    /** Every node up for upAfter, an evaluation since, nothing pending: the lines are where they settle. */
    const settled = async (): Promise<LineRow[] | undefined> => {
      const all = await Promise.all(agents.map((a) => c.node(a.nodeId)));
      if (!all.every((n) => n?.state === 'up')) return undefined;
      const since = Math.max(...all.map((n) => n.since ?? 0));
      const s = await status();
      return s.pendingWrites === 0 && s.lastPass && s.lastPass.at >= since + UP_AFTER_S * 1000 && s.lines.length === opts.services * 6 && s.lines.every((l) => l.node) ? s.lines : undefined;
    };
    let current = await until('every line written and settled', settled, 180_000, 500);
    const breakdown: DnsCluster['breakdown'] = [];
    let killedAt = 0;

    const round: FailoverRound = {
      watch(i) {
        const line = current.find((l) => l.node === names[i] && l.recordType === 'A');
        if (!line) throw new Error(`${names[i]} holds no line`);
        return { name: line.name, type: 'A', survivors: names.filter((_, j) => j !== i).map((n) => nodes[n].address) };
      },
      async kill(i) {
        killedAt = Date.now();
        await agents[i].kill('SIGKILL');
      },
      async revive(i) {
        const held = current.filter((l) => l.node === names[i]).length;
        const node = await c.node(agents[i].nodeId);
        if (node?.state !== 'down' || !node.since) throw new Error(`${names[i]} is not down after its lines moved`);
        // The lag gauge: from the node.down that triggered the evaluation to the end of its writes.
        const lag = /^outpost_dns_sync_decision_lag_seconds (\S+)$/m.exec((await c.api('GET', '/metrics')).text);
        breakdown.push({ detectMs: node.since - killedAt, switchMs: Number(lag?.[1]) * 1000, lines: held });
        await agents[i].restart();
        current = await until(`${names[i]} back and settled`, settled, 60_000, 250);
      },
      dig: (name, type) => pdns.dig(name, type),
    };
    const busiest = () => {
      const count = names.map((n) => current.filter((l) => l.node === n).length);
      return count.indexOf(Math.max(...count));
    };
    return { round, busiest, breakdown, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
