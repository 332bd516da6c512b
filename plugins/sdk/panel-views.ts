/**
 * Read-only building blocks for dashboard panels (and the controller's own sections): tables,
 * badges, chips, key/value lists, relative times. Every text is escaped; pass Html to embed markup.
 * They use the dashboard's classes, so a panel looks like the rest of the page without any CSS.
 */
import { attrs, esc, html, Html, raw, toHtml, type Content } from './html.ts';
import { Secret } from './secret.ts';

export type Tone = 'ok' | 'bad' | 'warn' | 'muted';

const TONES: Record<string, Tone> = {
  up: 'ok', ok: 'ok', running: 'ok', delivered: 'ok', done: 'ok', success: 'ok', active: 'ok', live: 'ok',
  down: 'bad', failed: 'bad', dead: 'bad', error: 'bad', cancelled: 'bad',
  pending: 'warn', installing: 'warn', degraded: 'warn', retrying: 'warn',
  stopped: 'muted', unknown: 'muted', removed: 'muted', expired: 'muted', revoked: 'muted',
};

/** The tone the dashboard gives a state word; unknown words are muted. */
export function toneOf(state: string): Tone {
  return Object.hasOwn(TONES, state) ? TONES[state] : 'muted';
}

/** A coloured state word. The class comes from a fixed list, so no input reaches it. */
export function badge(text: string, tone: Tone = toneOf(text)): Html {
  return html`<span class="badge ${raw(tone)}">${text}</span>`;
}

/** A small tag (a label, a plugin name); `title` shows on hover. */
export function chip(text: Content, tone?: Tone, title?: string): Html {
  return raw(`<span${attrs({ class: tone ? `chip ${tone}` : 'chip', title })}>${toHtml(text)}</span>`);
}

/** Chips in a wrapping row, or a muted dash when there are none. */
export function chips(items: Content[]): Html {
  return items.length ? html`<span class="chips">${items}</span>` : raw('<span class="muted">—</span>');
}

/** Muted text, e.g. the empty state of a cell. */
export function muted(text: Content): Html {
  return html`<span class="muted">${text}</span>`;
}

/** A cell: content alone, or with a class and spans. */
export type Cell = Content | { content: Content; cls?: string; rowspan?: number; colspan?: number };
export type Column = string | { label: string; cls?: string };

export interface Row {
  cells: Cell[];
  /** Attributes of the <tr>, e.g. {'data-node': name}: what tests and scripts select rows by. */
  attrs?: Record<string, string | number | boolean | undefined>;
  /** The column the first cell is in, when earlier ones are spanned from a row above (rowspan). */
  startColumn?: number;
}

export interface TableOptions {
  columns: Column[];
  rows: Row[];
  /** Shown instead of an empty table. */
  empty: string;
  /** Class of the <table>; `nodes`-like tables turn into one card per row on phones. */
  cls?: string;
  caption?: string;
}

function isCellObject(c: Cell): c is { content: Content; cls?: string; rowspan?: number; colspan?: number } {
  return typeof c === 'object' && c !== null && !(c instanceof Html) && !(c instanceof Secret) && !Array.isArray(c);
}

/**
 * A table with a header row; each cell is labelled with its column (phones show it beside the value).
 * Rows may carry fewer cells than columns when a cell spans.
 */
export function table(t: TableOptions): Html {
  if (!t.rows.length) return html`<p class="muted empty">${t.empty}</p>`;
  const label = (c: Column) => (typeof c === 'string' ? c : c.label);
  const head = t.columns.map((c) => `<th scope="col"${attrs({ class: typeof c === 'string' ? undefined : c.cls })}>${esc(label(c))}</th>`).join('');
  const body = t.rows
    .map((r) => {
      let col = r.startColumn ?? 0;
      const cells = r.cells.map((c) => {
        const o = isCellObject(c) ? c : { content: c };
        const column = t.columns[Math.min(col, t.columns.length - 1)];
        col += o.colspan ?? 1;
        const cls = o.cls ?? (typeof column === 'object' ? column.cls : undefined);
        return `<td${attrs({ 'data-label': column ? label(column) : undefined, class: cls, rowspan: o.rowspan, colspan: o.colspan })}>${toHtml(o.content)}</td>`;
      });
      return `<tr${attrs(r.attrs ?? {})}>${cells.join('')}</tr>`;
    })
    .join('');
  const caption = t.caption ? `<caption>${esc(t.caption)}</caption>` : '';
  return raw(`<div class="table-wrap"><table${attrs({ class: t.cls })}>${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`);
}

/** A definition list of labelled values (a detail view, a panel's summary line). */
export function keyValues(pairs: Array<[string, Content]>): Html {
  return raw(`<dl class="kv">${pairs.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${toHtml(v)}</dd></div>`).join('')}</dl>`);
}

/** "4 s ago", "3 min ago": what an operator scanning a table wants. */
export function ago(ts: number | null | undefined, now = Date.now()): string {
  if (!ts) return 'never';
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** A relative time with the exact one in a title and a machine-readable datetime. */
export function timeAgo(ts: number | null | undefined, now = Date.now()): Html {
  if (!ts) return muted('never');
  const iso = new Date(ts).toISOString();
  return html`<time datetime="${iso}" title="${iso}">${ago(ts, now)}</time>`;
}
