/**
 * The one HTML escaper of the code base, and a type for markup that is already safe, so that helpers
 * can take "text or markup" and escape the text by construction instead of trusting each caller.
 */
import type { Secret } from './secret.ts';

/** Markup safe to embed as is: made by `html`, the panel helpers, or `raw` from trusted parts. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What the helpers accept: text (escaped), numbers, Html (kept), a Secret (shown `***`), nothing (empty), or a list of these. */
export type Content = Html | Secret | string | number | boolean | null | undefined | readonly Content[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Content as markup: Html kept, lists joined, anything else escaped. */
export function toHtml(c: Content): string {
  if (c instanceof Html) return c.value;
  if (Array.isArray(c)) return c.map(toHtml).join('');
  return esc(c);
}

/** A template whose interpolations are escaped unless they are Html: `html\`<td>${name}</td>\``. */
export function html(strings: TemplateStringsArray, ...values: Content[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += toHtml(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Declares a string safe markup; only for markup the caller built from escaped or fixed parts. */
export function raw(markup: string): Html {
  return new Html(markup);
}

const ATTR_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * ` name="value"` pairs for an element; undefined, null and false leave the attribute out, true writes
 * it bare. Names are checked, not escaped: they come from code, and a bad one is a bug to surface.
 * Event handlers and style attributes are refused because the dashboard's CSP would drop them silently.
 */
export function attrs(a: Record<string, string | number | boolean | null | undefined>): string {
  let out = '';
  for (const [k, v] of Object.entries(a)) {
    if (!ATTR_NAME.test(k) || k.startsWith('on') || k === 'style') throw new Error(`invalid HTML attribute name ${JSON.stringify(k)} (no event handler or style attribute: the dashboard CSP forbids them)`);
    if (v === undefined || v === null || v === false) continue;
    out += v === true ? ` ${k}` : ` ${k}="${esc(v)}"`;
  }
  return out;
}
