/**
 * `GET /v1/badge`: CocoaSyncer's shields.io-style flat badge (templates/nodeName.tmpl), 184 × 20,
 * "CocoaSyncer" on #555 at the left, `<nodeName> | <live>/<total>` on pink at the right. Each node
 * shows its own name, so a visitor can tell which node answered.
 */
import type { HttpResult } from '../../sdk/http.ts';
import { escapeMarkup } from './markup.ts';

/** live/total are "?" on an agent that has not heard from the controller yet. */
export function badgeText(nodeName: string, live: number | string, total: number | string): string {
  return `${nodeName} | ${live}/${total}`;
}

export function badgeSvg(text: string): string {
  const t = escapeMarkup(text);
  return (
    '<!-- CocoaSyncer node badge, served by Outpost dns-sync -->\n' +
    '<!-- right: node name | live nodes / all nodes -->\n' +
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="184" height="20" role="img" aria-label="CocoaSyncer: ${t}">` +
    `<title>${t}</title>` +
    '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>' +
    '<clipPath id="r"><rect width="184" height="20" rx="3" fill="#fff"/></clipPath>' +
    '<g clip-path="url(#r)"><rect width="81" height="20" fill="#555"/><rect x="81" width="103" height="20" fill="pink"/><rect width="184" height="20" fill="url(#s)"/></g>' +
    '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110">' +
    '<text aria-hidden="true" x="415" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="710">CocoaSyncer</text>' +
    '<text x="415" y="140" transform="scale(.1)" fill="#fff" textLength="710">CocoaSyncer</text>' +
    `<text aria-hidden="true" x="1315" y="150" fill="#ccc" fill-opacity=".3" transform="scale(.1)" textLength="930">${t}</text>` +
    `<text x="1315" y="140" transform="scale(.1)" fill="#333" textLength="930">${t}</text>` +
    '</g></svg>\n'
  );
}

export function badgeAnswer(nodeName: string, live: number | string, total: number | string): HttpResult {
  return { status: 200, contentType: 'image/svg+xml; charset=utf-8', headers: { 'cache-control': 'no-cache' }, text: badgeSvg(badgeText(nodeName, live, total)) };
}
