/**
 * Route lookup by method and path (`/api/v1/nodes/:id/stats`: ":name" segments capture), for servers
 * that cannot take a route through their own router: the agent's node:http API, and the controller's
 * hyper-express server after it started listening (a plugin recovering on a retry mounts late).
 */
const splitPath = (p: string) => p.split('/').filter((s) => s !== '');

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export class RouteMatcher<T> {
  private readonly entries: Array<{ method: string; segments: string[]; value: T }> = [];

  add(method: string, path: string, value: T): void {
    this.entries.push({ method, segments: splitPath(path), value });
  }

  /** Everything added, in order. */
  values(): T[] {
    return this.entries.map((e) => e.value);
  }

  match(method: string, path: string): { value: T; params: Record<string, string> } | undefined {
    const parts = splitPath(path);
    for (const e of this.entries) {
      if (e.method !== method || e.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const ok = e.segments.every((s, i) => {
        if (s.startsWith(':')) {
          params[s.slice(1)] = safeDecode(parts[i]);
          return true;
        }
        return s === parts[i];
      });
      if (ok) return { value: e.value, params };
    }
    return undefined;
  }
}
