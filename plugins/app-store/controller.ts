import { idMap, type ControllerContext, type ControllerPlugin } from '../sdk/index.ts';
import { appFields, appRoutes } from './api.ts';
import { loadCatalog, type Catalog } from './catalog.ts';
import { appsPanel } from './panel.ts';
import { STATUS_CODE, type AppSnapshot, type AppStoreConfig } from './schema.ts';

interface Persisted {
  nodes: Record<string, Record<string, AppSnapshot>>;
}

/** Report type → event; a Map, as the type comes from the agent. */
const EVENTS = new Map([['installed', 'app.installed'], ['failed', 'app.failed'], ['uninstalled', 'app.uninstalled']]);

export function appStoreController(ctx: ControllerContext<AppStoreConfig>): ControllerPlugin {
  let catalog: Catalog = { apps: new Map(), errors: new Map() };
  /** node id → app → latest snapshot the agent reported (for the panel, the overview and events). */
  const byNode = new Map<string, Map<string, AppSnapshot>>();
  const persisted = () => ctx.store as unknown as { data: Persisted; update<R>(fn: (d: Persisted) => R): Promise<R> };

  function persist(nodeId: string): Promise<void> {
    return persisted().update((d) => {
      d.nodes ??= idMap();
      d.nodes[nodeId] = idMap(Object.fromEntries(byNode.get(nodeId) ?? []));
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
      for (const [id, apps] of Object.entries(persisted().data.nodes ?? {})) byNode.set(id, new Map(Object.entries(apps)));
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
    stop() {},
    async onReport(meta, type, data) {
      if (type === 'snapshot') {
        const apps = (data as { apps: AppSnapshot[] }).apps ?? [];
        byNode.set(meta.nodeId, new Map(apps.map((a) => [a.app, a])));
        await persist(meta.nodeId);
        return;
      }
      const s = data as AppSnapshot & { purged?: boolean };
      if (!s?.app) return;
      const m = nodeMap(meta.nodeId);
      if (type === 'uninstalled' && s.purged) m.delete(s.app);
      else m.set(s.app, s);
      const event = EVENTS.get(type);
      if (!event) return;
      await persist(meta.nodeId);
      const node = ctx.nodes.get(meta.nodeId);
      await ctx.webhooks.emit(event, {
        node: node?.name ?? s.node ?? meta.nodeId,
        node_id: meta.nodeId,
        ...appFields(s),
        ...(type === 'uninstalled' ? { purged: s.purged === true } : {}),
        ts: meta.ts,
      });
    },
    panel: appsPanel(ctx, () => byNode, () => catalog),
  };
}
