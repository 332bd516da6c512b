import { defineController, idMap, type ReportMeta, type Store } from '../sdk/index.ts';
import { appFields, appRoutes } from './api.ts';
import { loadCatalog, type Catalog } from './catalog.ts';
import { appsPanel } from './panel.ts';
import { STATUS_CODE, type AppSnapshot } from './schema.ts';
import { spec } from './spec.ts';

interface Persisted {
  nodes: Record<string, Record<string, AppSnapshot>>;
}

export default defineController(spec, (ctx) => {
  let catalog: Catalog = { apps: new Map(), errors: new Map() };
  /** node id → app → latest snapshot the agent reported (for the panel, the overview and events). */
  const byNode = new Map<string, Map<string, AppSnapshot>>();
  let store: Store<Persisted>;

  function persist(nodeId: string): Promise<void> {
    return store.update((d) => {
      d.nodes[nodeId] = idMap(Object.fromEntries(byNode.get(nodeId) ?? []));
    });
  }

  /** Keeps the node's latest snapshot of the app, then announces what happened to it (on disk first). */
  async function changed(meta: ReportMeta, s: AppSnapshot, event: 'app.installed' | 'app.failed' | 'app.uninstalled', purged?: boolean): Promise<void> {
    const m = nodeMap(meta.nodeId);
    if (purged) m.delete(s.app);
    else m.set(s.app, s);
    await persist(meta.nodeId);
    const node = ctx.nodes.get(meta.nodeId);
    await ctx.events.emit(event, {
      node: node?.name ?? s.node ?? meta.nodeId,
      node_id: meta.nodeId,
      ...appFields(s),
      ...(purged === undefined ? {} : { purged }),
      ts: meta.ts,
    });
  }

  const nodeMap = (id: string) => {
    let m = byNode.get(id);
    if (!m) byNode.set(id, (m = new Map()));
    return m;
  };

  return {
    async start() {
      catalog = await loadCatalog(ctx.config.catalogDirs);
      for (const [name, error] of catalog.errors) ctx.log.error({ app: name, error }, 'catalog manifest rejected');
      store = await ctx.openStore<Persisted>({ nodes: idMap() });
      for (const [id, apps] of Object.entries(store.data.nodes)) byNode.set(id, new Map(Object.entries(apps)));
      ctx.metrics.gaugeFn('outpost_apps', 'Apps known per node and Websoft9 status code (0 stopped/removed, 1 running, 2 failed, 3 installing).', () => {
        const out: Array<[Record<string, string>, number]> = [];
        for (const n of ctx.nodes.list()) {
          const counts: Record<string, number> = { '0': 0, '1': 0, '2': 0, '3': 0 };
          for (const s of byNode.get(n.id)?.values() ?? []) counts[STATUS_CODE[s.status]]++;
          for (const [status, v] of Object.entries(counts)) out.push([{ node: n.name, status }, v]);
        }
        return out;
      });
      ctx.routes.mount(appRoutes(ctx, () => catalog, () => byNode));
    },
    onReport: {
      async snapshot(meta, data) {
        byNode.set(meta.nodeId, new Map(data.apps.map((a) => [a.app, a])));
        await persist(meta.nodeId);
      },
      // Progress is kept for the panel and the overview, not announced.
      progress: (meta, s) => void nodeMap(meta.nodeId).set(s.app, s),
      installed: (meta, s) => changed(meta, s, 'app.installed'),
      failed: (meta, s) => changed(meta, s, 'app.failed'),
      uninstalled: (meta, s) => changed(meta, s, 'app.uninstalled', s.purged),
    },
    panel: appsPanel(ctx, () => byNode, () => catalog),
  };
});
