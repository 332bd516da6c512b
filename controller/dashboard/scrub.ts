/** Error texts come from plugins and receivers; they may quote a credential, so mask the obvious shapes. */
export function scrub(text: string): string {
  return text
    .replace(/\b(Bearer|Basic)\s+[^\s"',;]+/gi, '$1 ***')
    .replace(/\b(secret|token|password|passwd|pass|api[_-]?key|access[_-]?key|credential|authorization)(["']?\s*[=:]\s*["']?)[^\s"',;&]+/gi, '$1$2***')
    .replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//***@');
}
