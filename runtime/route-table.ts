import type { Route } from '../plugins/sdk/http.ts';
import type { HttpServer } from './http-server.ts';

/** All a route table needs of a server: the agent's node:http server and the controller's hyper-express one both fit. */
export type RouteMounter = Pick<HttpServer, 'mount'>;

/**
 * Plugin routes are mounted on the server once; each request looks up the route's current owner
 * instance here, so a plugin restarted with new config serves through the same paths.
 */
export class RouteTable {
  private readonly table = new Map<string, { owner: string; route: Route }>();

  constructor(private readonly http: RouteMounter) {}

  mount(owner: string, isRunning: () => boolean, routes: Route[]): void {
    for (const route of routes) {
      for (const m of Array.isArray(route.method) ? route.method : [route.method]) {
        const key = `${m} ${route.path}`;
        const existing = this.table.get(key);
        if (existing && existing.owner !== owner) throw new Error(`route ${key} is already mounted by plugin ${existing.owner}`);
        this.table.set(key, { owner, route: { ...route, method: m } });
        if (existing) continue;
        const live = () => this.table.get(key)!.route;
        this.http.mount([
          {
            method: m,
            path: route.path,
            get auth() {
              return live().auth;
            },
            error: (status, message) => live().error(status, message),
            handler: (req) => (isRunning() ? live().handler(req) : live().error(503, `plugin ${owner} is not running`)),
          },
        ]);
      }
    }
  }
}
