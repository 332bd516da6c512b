import type { ControllerContext, DashboardPanel } from '../sdk/index.ts';
import type { Catalog } from './catalog.ts';
import { STATUS_CODE, type AppSnapshot } from './schema.ts';
import type { Spec } from './spec.ts';

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const LABELS: Record<AppSnapshot['status'], string> = { installing: 'installing', running: 'running', failed: 'failed', removed: 'removed (data kept)', stopped: 'stopped' };

/** Apps per node with ports, status and progress; snapshots carry no secret, and everything is escaped. */
export function appsPanel(ctx: ControllerContext<Spec>, byNode: () => Map<string, Map<string, AppSnapshot>>, catalog: () => Catalog): DashboardPanel {
  return {
    title: 'Apps',
    render() {
      const rows: string[] = [];
      for (const n of ctx.nodes.list()) {
        const apps = [...(byNode().get(n.id)?.values() ?? [])].sort((a, b) => a.app.localeCompare(b.app));
        if (!apps.length) {
          rows.push(`<tr data-node="${esc(n.id)}"><td>${esc(n.name)}</td><td colspan="5">no apps</td></tr>`);
          continue;
        }
        for (const a of apps) {
          const ports = a.ports.map((p) => `${p.host}→${p.container}/${p.protocol} ${p.role}${p.service === 'main' ? '' : ` (${p.service})`}`).join('<br>');
          const progress = a.status === 'installing' ? `<progress max="100" value="${a.progress}"></progress> ${a.progress}% ${esc(a.step)}` : a.status === 'running' ? '100%' : '';
          rows.push(
            `<tr data-node="${esc(n.id)}" data-app="${esc(a.app)}" data-status="${STATUS_CODE[a.status]}"><td>${esc(n.name)}</td><td>${esc(a.app)}</td><td>${esc(LABELS[a.status])}</td><td>${progress}</td><td>${esc(ports).replace(/&#60;br&#62;/g, '<br>')}</td><td>${esc(a.info)}</td></tr>`,
          );
        }
      }
      const invalid = [...catalog().errors].map(([name, e]) => `<li>${esc(name)}: ${esc(e)}</li>`).join('');
      return `<table><thead><tr><th>Node</th><th>App</th><th>Status</th><th>Progress</th><th>Ports</th><th>Info</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
        `<p>Catalog: ${esc([...catalog().apps.keys()].join(', '))}</p>` +
        (invalid ? `<p>Rejected manifests:</p><ul>${invalid}</ul>` : '');
    },
  };
}
