import { defineController, HttpError, importLegacyJson, restError, z, type DurableLog, type HttpRequest, type HttpResult } from '../sdk/index.ts';
import { sampleSchema, type Sample } from './schema.ts';
import { spec } from './spec.ts';
import { searchServerRoutes } from './api.ts';
import { statsPanel } from './panel.ts';

/** One applied sample; the log's snapshot is the kept window, so compaction bounds it by historyMinutes. */
const SampleRecord = z.object({ node: z.string(), sample: sampleSchema });
type SampleRecord = z.output<typeof SampleRecord>;

export default defineController(spec, (ctx) => {
  const keep = Math.ceil((ctx.config.historyMinutes * 60) / ctx.config.interval) + 1;
  const history = new Map<string, Sample[]>();
  let log: DurableLog<SampleRecord>;

  const latest = (nodeId: string): Sample | undefined => history.get(nodeId)?.at(-1);

  /** Adds a sample unless it is not newer than the node's last one (a replay); true when added. */
  function remember(nodeId: string, s: Sample): boolean {
    const list = history.get(nodeId) ?? [];
    if (list.length && list[list.length - 1].ts >= s.ts) return false;
    list.push(s);
    if (list.length > keep) list.splice(0, list.length - keep);
    history.set(nodeId, list);
    return true;
  }

  function* window(): Iterable<SampleRecord> {
    for (const [node, list] of history) for (const sample of list) yield { node, sample };
  }

  /** Older releases kept the window in server-stats.json plus samples since in server-stats.journal.jsonl: carried over once. */
  async function importOld(): Promise<void> {
    await importLegacyJson<{ history?: Record<string, Sample[]> }>(
      ctx.dataDir,
      'server-stats.json',
      async (old, journalLines) => {
        const recs: SampleRecord[] = [];
        const take = (node: string, sample: unknown) => {
          const parsed = sampleSchema.safeParse(sample);
          if (parsed.success && remember(node, parsed.data)) recs.push({ node, sample: parsed.data });
        };
        for (const [node, list] of Object.entries(old.history ?? {})) for (const s of list) take(node, s);
        for (const line of journalLines) {
          try {
            const e = JSON.parse(line) as { node?: unknown; sample?: unknown };
            if (typeof e.node === 'string') take(e.node, e.sample);
          } catch {
            // a line torn by a crash was never acknowledged: the agent still held that sample
          }
        }
        if (recs.length) await log.append(recs);
      },
      'server-stats.journal.jsonl',
    );
  }

  // Only nodes with a sample have series: the pass goes over those, not over every enrolled node,
  // and the eleven families of one scrape share it.
  const withSamples = ctx.metrics.perScrape(() => {
    const out: Array<{ labels: Record<string, string>; s: Sample }> = [];
    for (const [id, list] of history) {
      const n = ctx.nodes.get(id);
      const s = list.at(-1);
      if (n && s) out.push({ labels: { node: n.name, node_id: n.id }, s });
    }
    return out;
  });

  function gauge(name: string, help: string, pick: (s: Sample) => number | undefined) {
    ctx.metrics.gaugeFn(name, help, () => {
      const out: Array<[Record<string, string>, number]> = [];
      for (const { labels, s } of withSamples()) {
        const v = pick(s);
        if (v !== undefined && Number.isFinite(v)) out.push([labels, v]);
      }
      return out;
    });
  }

  function statsRoute(req: HttpRequest): HttpResult {
    const node = ctx.nodes.resolve(req.params.id);
    if (!node) throw new HttpError(404, `node ${req.params.id} not found`);
    return { json: { node: node.id, name: node.name, latest: latest(node.id) ?? null, history: history.get(node.id) ?? [] } };
  }

  return {
    async start() {
      log = await ctx.openLog('samples', SampleRecord, { load: (r) => remember(r.node, r.sample), snapshot: window });
      await importOld();
      gauge('outpost_node_cpu_percent', 'CPU use of each node in percent.', (s) => s.cpu.percent);
      gauge('outpost_node_memory_used_percent', 'Memory in use on each node in percent.', (s) => s.memory.percent);
      gauge('outpost_node_memory_total_bytes', 'Memory of each node in bytes.', (s) => s.memory.total);
      gauge('outpost_node_memory_used_bytes', 'Memory in use on each node in bytes (total minus available).', (s) => s.memory.used);
      gauge('outpost_node_disk_used_percent', 'Disk space in use on each node in percent.', (s) => s.disk?.percent);
      gauge('outpost_node_disk_total_bytes', 'Disk space of each node in bytes.', (s) => s.disk?.total);
      gauge('outpost_node_load1', 'One-minute load average of each node.', (s) => s.load[0]);
      gauge('outpost_node_network_receive_bytes_per_second', 'Bytes received per second on non-loopback interfaces.', (s) => s.network.rxPerSec);
      gauge('outpost_node_network_transmit_bytes_per_second', 'Bytes sent per second on non-loopback interfaces.', (s) => s.network.txPerSec);
      gauge('outpost_node_uptime_seconds', 'Uptime of each node in seconds.', (s) => s.uptime);
      gauge('outpost_node_stats_age_seconds', 'Seconds since each node last reported a sample.', (s) => Math.max(0, (Date.now() - s.ts) / 1000));
      ctx.routes.mount([
        ...searchServerRoutes(ctx, latest),
        { method: 'GET', path: '/api/v1/nodes/:id/stats', auth: 'admin', error: restError, handler: statsRoute },
      ]);
    },
    onReport: {
      // The host checked the sample against the spec (a bad one is refused and acked with the error).
      async sample(meta, s) {
        // Replays after a reconnect can repeat a sample; history stays ordered and unique by time.
        if (!remember(meta.nodeId, s)) return;
        // Durable before the host acknowledges the report: the agent forgets it on the ack.
        await log.append([{ node: meta.nodeId, sample: s }]);
      },
    },
    panel: statsPanel(ctx, (id) => history.get(id) ?? []),
  };
});
