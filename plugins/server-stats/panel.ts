import type { ControllerContext, DashboardPanel } from '../sdk/index.ts';
import type { Sample } from './schema.ts';
import type { Spec } from './spec.ts';

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** An inline SVG polyline of the last values; no scripts, no external assets. */
export function sparkline(values: number[], max = 100, w = 120, h = 24): string {
  if (values.length < 2) return '';
  const step = w / (values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - (Math.min(v, max) / max) * h).toFixed(1)}`).join(' ');
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-hidden="true"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${pts}"/></svg>`;
}

export function statsPanel(ctx: ControllerContext<Spec>, historyOf: (id: string) => Sample[]): DashboardPanel {
  return {
    title: 'Host stats',
    render() {
      const rows = ctx.nodes
        .list()
        .map((n) => {
          const h = historyOf(n.id).slice(-60);
          const s = h.at(-1);
          if (!s) return `<tr><td>${esc(n.name)}</td><td colspan="4">no sample yet</td></tr>`;
          return `<tr data-node="${esc(n.id)}"><td>${esc(n.name)}</td><td>${s.cpu.percent.toFixed(0)}% ${sparkline(h.map((x) => x.cpu.percent))}</td><td>${s.memory.percent.toFixed(0)}% ${sparkline(h.map((x) => x.memory.percent))}</td><td>${s.disk ? `${s.disk.percent.toFixed(0)}%` : '—'}</td><td>${s.load.join(' / ')}</td></tr>`;
        })
        .join('');
      return `<table><thead><tr><th>Node</th><th>CPU</th><th>Memory</th><th>Disk</th><th>Load</th></tr></thead><tbody>${rows}</tbody></table>`;
    },
  };
}
