import type { Route } from '../plugins/sdk/http.ts';
import type { HttpServer } from './http-server.ts';

/** All a route table needs of a server: the agent's node:http server and the controller's hyper-express one both fit. */
export type RouteMounter = Pick<HttpServer, 'mount'>;

interface Entry {
  owner: string;
  route: Route;
  active: boolean;
}

/**
 * Plugin routes are mounted on the server once; each request looks up the route's current entry
 * here, so a plugin restarted with new config serves through the same paths, and a stopped
 * plugin's routes answer 503 in the route's own envelope (servers cannot drop a route once added).
 * A path belongs to the first plugin that mounted it for the life of the process.
 */
export class RouteTable {
  private readonly table = new Map<string, Entry>();

  constructor(private readonly http: RouteMounter) {}

  /** Mounts (or takes over again) owner's routes; the returned function turns them to 503. */
  mount(owner: string, routes: Route[]): () => void {
    const entries: Entry[] = [];
    const deactivate = () => {
      for (const e of entries) e.active = false;
    };
    try {
      this.mountEach(owner, routes, entries);
    } catch (err) {
      deactivate();
      throw err;
    }
    return deactivate;
  }

  private mountEach(owner: string, routes: Route[], entries: Entry[]): void {
    for (const route of routes) {
      for (const m of Array.isArray(route.method) ? route.method : [route.method]) {
        const key = `${m} ${route.path}`;
        const existing = this.table.get(key);
        if (existing && existing.owner !== owner) throw new Error(`route ${key} is already mounted by plugin ${existing.owner}`);
        const entry: Entry = { owner, route: { ...route, method: m }, active: true };
        entries.push(entry);
        if (existing) {
          this.table.set(key, entry);
          continue;
        }
        const live = () => this.table.get(key)!;
        // In the table only once the server has it: a failed mount leaves nothing half-registered.
        this.http.mount([
          {
            method: m,
            path: route.path,
            get auth() {
              return live().route.auth;
            },
            get rawBody() {
              return live().route.rawBody;
            },
            error: (status, message) => live().route.error(status, message),
            handler: (req) => {
              const e = live();
              return e.active ? e.route.handler(req) : e.route.error(503, `plugin ${owner} is not running`);
            },
          },
        ]);
        this.table.set(key, entry);
      }
    }
  }
}
