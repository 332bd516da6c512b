import { html, raw, table, type ControllerContext, type DashboardPanel, type Html } from '../sdk/index.ts';
import type { Sample } from './schema.ts';
import type { Spec } from './spec.ts';

/** An inline SVG polyline of the last values; no scripts, no external assets. */
export function sparkline(values: number[], max = 100, w = 120, h = 24): Html {
  if (values.length < 2) return raw('');
  const step = w / (values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - (Math.min(v, max) / max) * h).toFixed(1)}`).join(' ');
  return html`<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-hidden="true"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${pts}"/></svg>`;
}

export function statsPanel(ctx: ControllerContext<Spec>, historyOf: (id: string) => Sample[]): DashboardPanel {
  return {
    title: 'Host stats',
    render() {
      const rows = ctx.nodes.list().map((n) => {
        const h = historyOf(n.id).slice(-60);
        const s = h.at(-1);
        if (!s) return { attrs: { 'data-node': n.id }, cells: [n.name, { content: 'no sample yet', colspan: 4 }] };
        return {
          attrs: { 'data-node': n.id },
          cells: [n.name, html`${s.cpu.percent.toFixed(0)}% ${sparkline(h.map((x) => x.cpu.percent))}`, html`${s.memory.percent.toFixed(0)}% ${sparkline(h.map((x) => x.memory.percent))}`, s.disk ? `${s.disk.percent.toFixed(0)}%` : '—', s.load.join(' / ')],
        };
      });
      return table({ columns: ['Node', 'CPU', 'Memory', 'Disk', 'Load'], rows, empty: 'No node yet.' });
    },
  };
}
