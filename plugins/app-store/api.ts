import { checkId, HttpError, NodeUnavailable, restError, str, websoft9Error, websoft9Ok, type ControllerContext, type HttpRequest, type HttpResult, type NodeInfo, type Route, type z } from '../sdk/index.ts';
import type { Catalog } from './catalog.ts';
import { APP_NAME, STATUS_CODE, type AppSnapshot } from './schema.ts';
import type { Spec } from './spec.ts';

type Commands = NonNullable<Spec['commands']>;

const ok = websoft9Ok;
/**
 * A refusal that depends on the node's state (already exists, not installed, no free port): code "0"
 * with what Websoft9 would say, the current app data when there is an app, and an HTTP status for
 * clients that read it (409 conflict, 404 not installed), as docs/compat.md sets for every seed API.
 */
const refuse = websoft9Error;

const INSTALL_TIMEOUT_MS = 30_000;
const UNINSTALL_TIMEOUT_MS = 180_000;

export function mainPort(s: AppSnapshot): number | undefined {
  const main = s.ports.filter((p) => p.service === 'main');
  return (main.find((p) => p.role === 'http') ?? main.find((p) => p.role === 'https') ?? main[0])?.host;
}
export function dbPort(s: AppSnapshot): number | undefined {
  return s.ports.find((p) => p.role === 'db')?.host;
}

/** The fields every answer and event about one app carries (Websoft9's as strings, plus the port list). */
export function appFields(s: AppSnapshot) {
  return {
    appName: s.app,
    containerName: s.containerName,
    status: STATUS_CODE[s.status],
    port: String(mainPort(s) ?? ''),
    db_port: String(dbPort(s) ?? ''),
    info: s.info,
    ports: s.ports.map((p) => ({ service: p.service, role: p.role, container: p.container, host: p.host, protocol: p.protocol })),
  };
}

/** Websoft9's data fields plus Outpost's progress, step, node and update time. */
export function seedData(s: AppSnapshot) {
  return { ...appFields(s), progress: s.progress, step: s.step, node: s.node ?? '', updated_at: new Date(s.updatedAt).toISOString() };
}

function appName(req: HttpRequest): string {
  const app = str(req.fields, 'appName');
  if (!app) throw new HttpError(400, 'missing parameter "appName"');
  checkId(app, 'appName');
  if (!APP_NAME.test(app)) throw new HttpError(400, `invalid appName "${app.slice(0, 60)}": it must match ^[a-z][a-z0-9-]{1,29}$`);
  return app;
}

function purgeFlag(req: HttpRequest): boolean {
  const v = req.fields.purge;
  if (v === undefined || v === null || v === '' || v === false) return false;
  if (v === true) return true;
  const s = String(v).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  throw new HttpError(400, 'parameter "purge" must be true or false');
}

export function appRoutes(ctx: ControllerContext<Spec>, catalog: () => Catalog, cached: () => Map<string, Map<string, AppSnapshot>>): Route[] {
  /** The node a request addresses (`node` by id, name or address; default the local node), checked usable. */
  function target(req: HttpRequest): NodeInfo {
    try {
      const ref = str(req.fields, 'node');
      return ctx.nodes.require(ref === undefined ? undefined : checkId(ref, 'node'), 'app-store');
    } catch (err) {
      // Not enabled on a node without Docker (npm start on a machine without it): name the cause.
      const node = err instanceof NodeUnavailable && err.reason === 'plugin' ? err.node : undefined;
      const docker = node && !node.plugins.some((p) => p.name === 'app-store') ? node.capabilities?.docker : undefined;
      if (node && docker && !docker.available) throw new HttpError(503, `Docker is not available on node ${node.name}: ${docker.reason ?? 'no Docker Engine'}, so app-store is not enabled there`);
      throw err;
    }
  }

  async function command<K extends keyof Commands & string>(node: NodeInfo, action: K, args: z.input<Commands[K]['args']>, timeoutMs: number) {
    try {
      return await ctx.command(node.id, action, args, { timeoutMs });
    } catch (err) {
      throw new HttpError(503, `node ${node.name}: ${(err as Error).message}`);
    }
  }

  async function installApp(req: HttpRequest): Promise<HttpResult> {
    const app = appName(req);
    const cat = catalog();
    const manifest = cat.apps.get(app);
    if (!manifest) throw cat.errors.has(app) ? new HttpError(400, `${app} cannot be installed: ${cat.errors.get(app)}`) : new HttpError(404, `unknown app "${app}": it is not in the catalog`);
    const node = target(req);
    const r = await command(node, 'install', { app, manifest }, INSTALL_TIMEOUT_MS);
    if (r.ok) return ok(`${app}安装成功`, { ...seedData(r.app), info: `installing on ${node.name}: poll /getAppInfo for progress` });
    if (r.reason === 'exists' || r.reason === 'installing') return refuse(409, `${app}已经存在 (already exists: ${r.message})`, r.app ? seedData(r.app) : {});
    return refuse(409, `${app}安装失败 (install refused: ${r.message})`);
  }

  async function uninstallApp(req: HttpRequest): Promise<HttpResult> {
    const app = appName(req);
    const purge = purgeFlag(req);
    const node = target(req);
    const r = await command(node, 'uninstall', { app, purge }, UNINSTALL_TIMEOUT_MS);
    if (r.ok) return ok(`${app}卸载成功`, { ...seedData(r.app), purged: purge });
    if (r.reason === 'remove-failed') {
      const port = r.app ? (mainPort(r.app) ?? '') : '';
      return refuse(409, `${app}卸载失败,仍然在运行,端口为${port},请ssh登录服务器后使用docker ps查看,并手动停止容器 (${r.message})`, r.app ? seedData(r.app) : {});
    }
    return refuse(r.reason === 'not-installed' ? 404 : 409, `${app}卸载失败 (${r.message})`, r.app ? seedData(r.app) : {});
  }

  async function getAppInfo(req: HttpRequest): Promise<HttpResult> {
    const app = appName(req);
    const node = target(req);
    const s = await command(node, 'info', { app }, INSTALL_TIMEOUT_MS);
    if (s) return ok(`${app}状态信息查询成功`, seedData(s));
    if (!catalog().apps.has(app)) throw new HttpError(404, `unknown app "${app}": it is not in the catalog`);
    return ok(`${app}状态信息查询成功`, { appName: app, containerName: `websoft9-${app}`, status: '0', port: '', db_port: '', info: `${app} is not installed on ${node.name}`, progress: 0, step: '', ports: [], node: node.name });
  }

  async function getAllAppInfo(req: HttpRequest): Promise<HttpResult> {
    const node = target(req);
    const list = await command(node, 'list', {}, INSTALL_TIMEOUT_MS);
    const apps = list.filter((s) => s.status !== 'removed').sort((a, b) => a.app.localeCompare(b.app)).map(seedData);
    return ok('所有App状态信息查询成功', { node: node.name, count: apps.length, apps });
  }

  async function uninstallAllApp(req: HttpRequest): Promise<HttpResult> {
    const purge = purgeFlag(req);
    const node = target(req);
    const results = await command(node, 'uninstallAll', { purge }, UNINSTALL_TIMEOUT_MS * 4);
    const data = { node: node.name, purged: purge, uninstalled: results.filter((r) => r.ok).map((r) => r.app), failed: results.filter((r) => !r.ok).map((r) => ({ appName: r.app, info: r.message })) };
    return data.failed.length ? refuse(409, `${data.failed.length}个App卸载失败 (some apps could not be removed)`, data) : ok('所有App卸载成功', data);
  }

  async function secrets(req: HttpRequest): Promise<HttpResult> {
    if (!APP_NAME.test(req.params.app)) throw new HttpError(400, `invalid app name "${req.params.app.slice(0, 60)}"`);
    const node = ctx.nodes.require(req.params.node, 'app-store');
    const r = await command(node, 'secrets', { app: req.params.app }, INSTALL_TIMEOUT_MS);
    return { json: { node: node.name, node_id: node.id, app: r.app, secrets: r.secrets }, headers: { 'cache-control': 'no-store' } };
  }

  function overview(): HttpResult {
    const cat = catalog();
    const byNode = cached();
    return {
      json: {
        catalog: [...cat.apps.values()].map((m) => ({ name: m.name, title: m.title, image: m.image, sidecars: m.sidecars.map((s) => s.name) })),
        invalid: Object.fromEntries(cat.errors),
        nodes: ctx.nodes.list().map((n) => ({ node: n.name, node_id: n.id, state: n.state, apps: [...(byNode.get(n.id)?.values() ?? [])].map(seedData) })),
      },
    };
  }

  const seedAuth = ctx.config.open ? 'none' : 'admin';
  const seed = (path: string, handler: Route['handler']): Route => ({ method: ['GET', 'POST'], path, auth: seedAuth, error: websoft9Error, handler });
  return [
    seed('/installApp', installApp),
    seed('/uninstallApp', uninstallApp),
    seed('/getAppInfo', getAppInfo),
    seed('/getAllAppInfo', getAllAppInfo),
    seed('/uninstallAllApp', uninstallAllApp),
    { method: 'GET', path: '/api/v1/apps', auth: 'admin', error: restError, handler: overview },
    { method: 'GET', path: '/api/v1/apps/:node/:app/secrets', auth: 'admin', error: restError, handler: secrets },
  ];
}
