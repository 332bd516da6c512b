import { actionButton, badge, domId, toneOf, form, html, table, type ControllerContext, type DashboardPanel, type Html, type NodeInfo, type Row } from '../sdk/index.ts';
import type { Catalog } from './catalog.ts';
import { STATUS_CODE, type AppSnapshot } from './schema.ts';
import type { Spec } from './spec.ts';

const LABELS: Record<AppSnapshot['status'], string> = { installing: 'installing', running: 'running', failed: 'failed', removed: 'removed (data kept)', stopped: 'stopped' };

const runsAppStore = (n: NodeInfo) => n.state === 'up' && n.plugins.some((p) => p.name === 'app-store' && p.state === 'running');

/** Install posts to the seed route /installApp itself: the panel offers what a Websoft9 client would call. */
function installForm(nodes: NodeInfo[], catalog: Catalog): Html {
  const apps = [...catalog.apps.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (!apps.length) return html`<p class="muted">The catalog is empty: add manifests to a catalog directory (configs/apps).</p>`;
  const ready = nodes.filter(runsAppStore);
  if (!ready.length) return html`<p class="muted">No node is up with the app-store plugin running: nothing can be installed right now.</p>`;
  return form({
    id: 'app-store-install',
    action: '/installApp',
    submit: 'Install',
    fields: [
      { name: 'appName', label: 'App', type: 'select', options: apps.map((m) => ({ value: m.name, label: m.title && m.title !== m.name ? `${m.name} (${m.title})` : m.name })), value: apps[0].name },
      { name: 'node', label: 'Node', type: 'select', options: ready.map((n) => ({ value: n.id, label: n.name })), value: ready[0].id },
    ],
    result: { show: 'json' },
    success: '{message}: follow its progress in the table.',
  });
}

function uninstallButton(node: NodeInfo, app: string): Html {
  return actionButton({
    id: domId('app-store-uninstall', `${node.id}/${app}`),
    action: '/uninstallApp',
    fields: { appName: app, node: node.id },
    label: 'Uninstall',
    ariaLabel: `Uninstall ${app} from ${node.name}`,
    danger: true,
    confirm: `Uninstall ${app} from ${node.name}? Its containers and network are removed; its volumes (data) are kept.`,
    success: '{message}',
  });
}

/** Apps per node with ports, status and progress; install from the catalog, uninstall. Snapshots carry no secret. */
export function appsPanel(ctx: ControllerContext<Spec>, byNode: () => Map<string, Map<string, AppSnapshot>>, catalog: () => Catalog): DashboardPanel {
  return {
    title: 'Apps',
    render() {
      const nodes = ctx.nodes.list();
      const rows = nodes.flatMap((n): Row[] => {
        const apps = [...(byNode().get(n.id)?.values() ?? [])].sort((a, b) => a.app.localeCompare(b.app));
        if (!apps.length) return [{ attrs: { 'data-node': n.id }, cells: [n.name, { content: 'no apps', colspan: 6 }] }];
        return apps.map((a) => {
          const ports = a.ports.map((p, i) => html`${i ? html`<br>` : ''}${p.host}→${p.container}/${p.protocol} ${p.role}${p.service === 'main' ? '' : ` (${p.service})`}`);
          const progress = a.status === 'installing' ? html`<progress max="100" value="${a.progress}"></progress> ${a.progress}% ${a.step}` : a.status === 'running' ? '100%' : '';
          return {
            attrs: { 'data-node': n.id, 'data-app': a.app, 'data-status': STATUS_CODE[a.status] },
            cells: [n.name, a.app, badge(LABELS[a.status], toneOf(a.status)), progress, ports, a.info, a.status === 'removed' ? '' : uninstallButton(n, a.app)],
          };
        });
      });
      const cat = catalog();
      const invalid = [...cat.errors].map(([name, e]) => html`<li>${name}: ${e}</li>`);
      return html`${table({ columns: ['Node', 'App', 'Status', 'Progress', 'Ports', 'Info', 'Actions'], rows, empty: 'No node yet.' })}<p>Catalog: ${[...cat.apps.keys()].join(', ')}</p>${invalid.length ? html`<p>Rejected manifests:</p><ul>${invalid}</ul>` : ''}<details id="app-store-add" class="actions"><summary>Install an app</summary>${installForm(nodes, cat)}</details>`;
    },
  };
}
