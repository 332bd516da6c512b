/**
 * A Docker Engine API on a unix socket, for app-store's unit tests: the endpoints dockerode calls for
 * an install and an uninstall, over state kept in memory. Containers do not run anything: a started
 * container is "running" from the (fake) clock's now, unless its image is listed in `exits`, which
 * makes it exit at once with code 9 and log its environment (as a broken app would print its config).
 * The real Engine is exercised by test/e2e/app-store.e2e.ts.
 */
import type { ServerResponse } from 'node:http';
import { unixHttpServer, type UnixHttpServer } from '../../plugins/sdk/testing/index.ts';

interface Container {
  id: string;
  name: string;
  image: string;
  env: string[];
  labels: Record<string, string>;
  bindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
  status: 'created' | 'running' | 'exited';
  exitCode: number;
  startedAt: string;
}

export interface FakeDocker extends UnixHttpServer {
  containers: Map<string, Container>;
  networks: Map<string, Record<string, string>>;
  volumes: Map<string, Record<string, string>>;
  images: Set<string>;
}

const send = (res: ServerResponse, status: number, body?: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body === undefined ? '' : JSON.stringify(body));
};
const notFound = (res: ServerResponse, what: string) => send(res, 404, { message: `No such ${what}` });

/** `filters={"label":["k=v"],"name":["n"]}` as the Engine reads it. */
function filtersOf(url: URL): { label: string[]; name: string[] } {
  const f = JSON.parse(url.searchParams.get('filters') ?? '{}') as { label?: string[]; name?: string[] };
  return { label: f.label ?? [], name: f.name ?? [] };
}
const hasLabels = (labels: Record<string, string>, wanted: string[]) => wanted.every((w) => labels[w.slice(0, w.indexOf('='))] === w.slice(w.indexOf('=') + 1));

export async function fakeDocker(opts: { images?: string[]; exits?: string[] } = {}): Promise<FakeDocker> {
  const containers = new Map<string, Container>();
  const networks = new Map<string, Record<string, string>>();
  const volumes = new Map<string, Record<string, string>>();
  const images = new Set(opts.images ?? []);
  const exits = new Set(opts.exits ?? []);
  let ids = 0;

  const server = await unixHttpServer((req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://docker');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const json = () => (body ? JSON.parse(body) : {});
    const [kind, id, action] = parts;

    if (kind === '_ping') return send(res, 200, 'OK');
    if (kind === 'images') {
      if (method === 'POST' && id === 'create') {
        const ref = `${url.searchParams.get('fromImage')}:${url.searchParams.get('tag') ?? 'latest'}`;
        images.add(ref);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify({ status: 'Pulling fs layer', id: 'l1', progressDetail: {} })}\n${JSON.stringify({ status: 'Download complete', id: 'l1' })}\n`);
        return;
      }
      const ref = parts.slice(1, -1).join('/');
      return images.has(ref) ? send(res, 200, { Id: `sha256:${ref}` }) : notFound(res, `image: ${ref}`);
    }
    if (kind === 'networks') {
      if (method === 'GET' && !id) {
        const { name, label } = filtersOf(url);
        return send(res, 200, [...networks].filter(([n, l]) => (!name.length || name.includes(n)) && hasLabels(l, label)).map(([n, l]) => ({ Name: n, Id: n, Labels: l })));
      }
      if (method === 'POST' && id === 'create') {
        const b = json();
        networks.set(b.Name, b.Labels ?? {});
        return send(res, 201, { Id: b.Name });
      }
      if (method === 'DELETE') return networks.delete(id) ? send(res, 204) : notFound(res, `network: ${id}`);
    }
    if (kind === 'volumes') {
      if (method === 'GET' && !id) return send(res, 200, { Volumes: [...volumes].filter(([, l]) => hasLabels(l, filtersOf(url).label)).map(([n, l]) => ({ Name: n, Labels: l })) });
      if (method === 'POST' && id === 'create') {
        const b = json();
        volumes.set(b.Name, b.Labels ?? {});
        return send(res, 201, { Name: b.Name });
      }
      if (method === 'GET') return volumes.has(id) ? send(res, 200, { Name: id, Labels: volumes.get(id) }) : notFound(res, `volume: ${id}`);
      if (method === 'DELETE') return volumes.delete(id) ? send(res, 204) : notFound(res, `volume: ${id}`);
    }
    if (kind === 'containers') {
      if (method === 'GET' && id === 'json') {
        const { label } = filtersOf(url);
        const list = [...containers.values()].filter((c) => hasLabels(c.labels, label));
        return send(res, 200, list.map((c) => ({ Id: c.id, Names: [`/${c.name}`], State: c.status, Labels: c.labels, Ports: c.status === 'running' ? Object.values(c.bindings).flat().map((b) => ({ PublicPort: Number(b.HostPort) })) : [] })));
      }
      if (method === 'POST' && id === 'create') {
        const name = url.searchParams.get('name')!;
        if (containers.has(name)) return send(res, 409, { message: `Conflict. The container name "/${name}" is already in use` });
        const b = json();
        containers.set(name, { id: `c${++ids}`, name, image: b.Image, env: b.Env ?? [], labels: b.Labels ?? {}, bindings: b.HostConfig?.PortBindings ?? {}, status: 'created', exitCode: 0, startedAt: '0001-01-01T00:00:00Z' });
        return send(res, 201, { Id: `c${ids}` });
      }
      const c = containers.get(id);
      if (!c) return notFound(res, `container: ${id}`);
      if (method === 'GET' && action === 'json') {
        return send(res, 200, { Id: c.id, Name: `/${c.name}`, RestartCount: 0, State: { Status: c.status, Running: c.status === 'running', ExitCode: c.exitCode, StartedAt: c.startedAt }, Config: { Labels: c.labels }, HostConfig: { PortBindings: c.bindings }, NetworkSettings: { Networks: {} } });
      }
      if (method === 'POST' && action === 'start') {
        c.startedAt = new Date().toISOString();
        if (exits.has(c.image)) Object.assign(c, { status: 'exited', exitCode: 9 });
        else c.status = 'running';
        return send(res, 204);
      }
      if (method === 'POST' && action === 'stop') {
        if (c.status !== 'running') return send(res, 304);
        c.status = 'exited';
        return send(res, 204);
      }
      if (method === 'GET' && action === 'logs') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(`config: ${c.env.join(' ')}\n`);
        return;
      }
      if (method === 'DELETE') {
        containers.delete(id);
        return send(res, 204);
      }
    }
    send(res, 404, { message: `page not found: ${method} ${url.pathname}` });
  });
  return Object.assign(server, { containers, networks, volumes, images });
}
