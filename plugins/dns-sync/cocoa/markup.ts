/** Escapes text for HTML and SVG (element content and quoted attributes alike). */
export function escapeMarkup(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
