import { checkId, idMap, isReservedKey } from '../plugins/sdk/ids.ts';
import type { ControllerCluster } from './cluster.ts';
import { HttpError, clientError, restError, type HttpRequest, type HttpResult, type Method, type Route } from '../plugins/sdk/http.ts';
import { keepStoredSecrets, redactAll, redactRaw } from '../plugins/sdk/secret.ts';
import type { Log } from '../plugins/sdk/log.ts';
import { isLocalCaller } from '../plugins/sdk/client-ip.ts';
import type { Identity } from './identity.ts';
import type { JoinTokens } from './tokens.ts';
import { parseTtl } from './tokens.ts';
import type { NodeRecord, Registry } from './registry.ts';
import type { LinkServer } from './link-server.ts';
import type { ControllerPluginHost } from './plugin-host.ts';
import type { Subscriptions } from './webhooks/subscriptions.ts';
import { RetryRefused, type Outbox } from './webhooks/outbox.ts';
import type { EventLog } from './event-log.ts';
import type { Fanout } from './webhooks/fanout.ts';
import { isStorageFull } from '../plugins/sdk/durable/storage-error.ts';

export interface RestDeps {
  identity: Identity;
  tokens: JoinTokens;
  registry: Registry;
  link: LinkServer;
  plugins: ControllerPluginHost;
  subs: Subscriptions;
  outbox: Outbox;
  fanout: Fanout;
  events: EventLog;
  log: Log;
  version: string;
  cluster: Pick<ControllerCluster, 'status'>;
}

function route(method: Method | Method[], path: string, handler: (req: HttpRequest) => Promise<HttpResult> | HttpResult, auth: Route['auth'] = 'admin'): Route {
  return { method, path, auth, handler, error: restError };
}

const ok = (json: unknown, status = 200): HttpResult => ({ status, json });

/** A config as reads show it: its plugin's secret() fields as `***`; with no schema to tell, every value. */
function shownConfig(d: RestDeps, name: string, config: unknown): unknown {
  const schema = d.plugins.configSchema(name);
  return schema ? redactRaw(schema, config) : redactAll(config);
}

function objectBody(req: HttpRequest): Record<string, unknown> {
  if (req.json !== undefined && (typeof req.json !== 'object' || req.json === null || Array.isArray(req.json))) throw new HttpError(400, 'body must be a JSON object');
  return req.fields;
}

function labelsOf(v: unknown, field: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v === 'string') {
    // CLI-friendly form: "k=v,k2=v2"
    const out = idMap<string>();
    for (const pair of v.split(',').filter(Boolean)) {
      const [k, val] = pair.split('=', 2);
      if (!k || val === undefined) throw new HttpError(400, `${field} must be k=v pairs separated by commas`);
      out[k.trim()] = val.trim();
    }
    return reservedFree(out, field);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new HttpError(400, `${field} must be an object of string values`);
  return reservedFree(v as Record<string, string>, field);
}

/** Labels are merged into node records and matched by key: no key may name an Object.prototype member. */
function reservedFree(labels: Record<string, string>, field: string): Record<string, string> {
  const bad = Object.keys(labels).find(isReservedKey);
  if (bad !== undefined) throw new HttpError(400, `${field}: the key ${JSON.stringify(bad)} is reserved`);
  return labels;
}

/** Spends a use of the join token, signs the node's credential and stores the node. */
async function admit(d: RestDeps, req: HttpRequest, b: Record<string, unknown>, name: string, labels: Record<string, string>): Promise<{ rec: NodeRecord; credential: string }> {
  let joinToken;
  try {
    joinToken = await d.tokens.consume(b.token as string);
  } catch (err) {
    d.log.warn({ ip: req.ip, reason: (err as Error).message }, 'enrollment refused');
    throw clientError(401, err);
  }
  // Signed before the node is stored: one write of nodes.json per enrollment, not two.
  const id = d.registry.newId();
  const { credential, jti } = await d.identity.signCredential(id);
  try {
    const rec = await d.registry.add({ id, name, labels: { ...joinToken.labels, ...labels }, address: (b.address as string | undefined) ?? req.ip, local: b.local === true && isLocalCaller(req), jti });
    return { rec, credential };
  } catch (err) {
    // Not enrolled, so not a use: the client retries with the same token.
    await d.tokens.giveBack(joinToken.id).catch((e: unknown) => d.log.warn({ token: joinToken.id, err: (e as Error).message }, 'could not give back the join token use of a failed enrollment'));
    throw err;
  }
}

/** Answered 202 once the event is in the event log and its deliveries are in the outbox: a crash after the answer loses neither. */
async function testEvent(d: RestDeps, req: HttpRequest): Promise<HttpResult> {
  const b = objectBody(req);
  if (b.message !== undefined && (typeof b.message !== 'string' || b.message.length > 200)) throw new HttpError(400, 'message must be a string of at most 200 characters');
  const payload = { message: (b.message as string | undefined) ?? 'test event from Outpost', at: new Date().toISOString() };
  const [e] = await d.events.record([{ event: 'test.ping', data: payload }]);
  try {
    await d.fanout.settled(e.seq);
  } catch (err) {
    // The event is on disk; the fan-out queues its deliveries by itself once it can write again.
    if (isStorageFull(err)) throw new HttpError(507, `storage full: ${(err as Error).message}; event ${e.id} is recorded and its deliveries will be queued once space is freed`);
    throw err;
  }
  return ok({ event: 'test.ping', id: e.id, data: payload }, 202);
}

export function restRoutes(d: RestDeps): Route[] {
  /** Names whose enrollment is in flight: the check and the store are split by awaits (token, signature, write). */
  const enrolling = new Set<string>();
  return [
    route('POST', '/api/v1/enroll', async (req) => {
      const b = objectBody(req);
      if (typeof b.token !== 'string' || b.token === '') throw new HttpError(400, 'token is required');
      const name = b.name === undefined ? `node-${Date.now().toString(36)}` : b.name;
      if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw new HttpError(400, 'name must be 1-63 letters, digits, ".", "_" or "-"');
      checkId(name, 'name');
      if (b.address !== undefined && (typeof b.address !== 'string' || b.address.length > 255)) throw new HttpError(400, 'address must be a string');
      const labels = labelsOf(b.labels, 'labels');
      // Names are how operators and seed APIs (`?node=`) address nodes, so they must stay unambiguous.
      // Checked before the token is consumed, so a refused enrollment costs no use.
      const taken = d.registry.byName(name);
      if (taken) throw new HttpError(409, `a node named "${name}" is already enrolled (${taken.id}); delete it first or join under another name`);
      // Claimed in the same turn as the check: parallel enrollments under one name get one node, the rest 409, and spend no use.
      if (enrolling.has(name)) throw new HttpError(409, `a node named "${name}" is being enrolled by another request; join under another name`);
      enrolling.add(name);
      let admitted;
      try {
        admitted = await admit(d, req, b, name, labels);
      } finally {
        enrolling.delete(name);
      }
      const { rec, credential } = admitted;
      d.log.info({ node: rec.id, name }, 'node enrolled');
      return ok({ nodeId: rec.id, name, credential }, 201);
    }, 'none'),

    route('GET', '/api/v1/nodes', () => ok({ nodes: d.registry.list() })),
    route('GET', '/api/v1/nodes/:id', (req) => {
      const n = d.registry.resolve(req.params.id);
      if (!n) throw new HttpError(404, `node ${req.params.id} not found`);
      return ok({ node: n });
    }),
    route('DELETE', '/api/v1/nodes/:id', async (req) => {
      const n = d.registry.resolve(req.params.id);
      if (!n) throw new HttpError(404, `node ${req.params.id} not found`);
      await d.registry.remove(n.id);
      d.link.kick(n.id, 'node deleted');
      return ok({ deleted: n.id });
    }),

    route('POST', '/api/v1/tokens', async (req) => {
      const b = objectBody(req);
      let ttlMs: number;
      try {
        ttlMs = parseTtl((b.ttl as string | number | undefined) ?? '24h');
      } catch (err) {
        throw new HttpError(400, `ttl: ${(err as Error).message}`);
      }
      // A number, or digits from a form; Number(true) or Number([3]) must not pass for a count.
      const uses = b.uses === undefined ? 1 : typeof b.uses === 'number' || (typeof b.uses === 'string' && /^\d+$/.test(b.uses.trim())) ? Number(b.uses) : NaN;
      if (!Number.isInteger(uses) || uses < 1 || uses > 100_000) throw new HttpError(400, 'uses must be an integer from 1 to 100000');
      const { token, info } = await d.tokens.create({ ttlMs, uses, labels: labelsOf(b.labels, 'labels') });
      return ok({ token, ...info }, 201);
    }),
    route('GET', '/api/v1/tokens', () => ok({ tokens: d.tokens.list() })),
    route('DELETE', '/api/v1/tokens/:id', async (req) => {
      if (!(await d.tokens.revoke(req.params.id))) throw new HttpError(404, `token ${req.params.id} not found`);
      return ok({ revoked: req.params.id });
    }),

    route('GET', '/api/v1/plugins', () => ok({ plugins: d.plugins.status() })),
    route('GET', '/api/v1/plugins/:name/config', (req) => {
      if (!d.plugins.has(req.params.name)) throw new HttpError(404, `plugin ${req.params.name} is not loaded`);
      return ok({ plugin: req.params.name, config: shownConfig(d, req.params.name, d.plugins.configOf(req.params.name)) });
    }),
    route('PUT', '/api/v1/plugins/:name/config', async (req) => {
      const name = req.params.name;
      if (!d.plugins.has(name)) throw new HttpError(404, `plugin ${name} is not loaded`);
      const b = objectBody(req);
      const incoming = 'config' in b && Object.keys(b).length === 1 ? b.config : b;
      try {
        const schema = d.plugins.configSchema(name);
        const applied = await d.plugins.setConfig(name, schema ? keepStoredSecrets(schema, incoming, d.plugins.configOf(name)) : incoming);
        return ok({ plugin: name, config: shownConfig(d, name, applied) });
      } catch (err) {
        throw clientError(400, err);
      }
    }),

    route('GET', '/api/v1/webhooks', () => ok({ webhooks: d.subs.list(), events: d.subs.knownEvents() })),
    route('POST', '/api/v1/webhooks', async (req) => {
      const b = objectBody(req);
      try {
        const sub = await d.subs.add({ url: b.url, secret: b.secret, events: b.events, description: b.description });
        // The secret is shown once, like a token; it is never listed again.
        return ok({ ...sub }, 201);
      } catch (err) {
        throw clientError(400, err);
      }
    }),
    route('DELETE', '/api/v1/webhooks/:id', async (req) => {
      if (!(await d.subs.remove(req.params.id))) throw new HttpError(404, `webhook ${req.params.id} not found`);
      return ok({ deleted: req.params.id });
    }),
    route('GET', '/api/v1/deliveries', async (req) => {
      const state = req.query.state;
      if (state && !['pending', 'delivered', 'dead'].includes(state)) throw new HttpError(400, 'state must be pending, delivered or dead');
      const limit = req.query.limit ? Number(req.query.limit) : 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'limit must be an integer from 1 to 1000');
      const subscription = req.query.subscription ? checkId(req.query.subscription, 'subscription') : undefined;
      return ok({ deliveries: await d.outbox.list({ state, limit, subscription }) });
    }),
    route('GET', '/api/v1/deliveries/:id', async (req) => {
      const dl = await d.outbox.get(req.params.id);
      if (!dl) throw new HttpError(404, `delivery ${req.params.id} not found`);
      return ok({ delivery: dl });
    }),
    route('POST', '/api/v1/deliveries/:id/retry', async (req) => {
      const current = await d.outbox.get(req.params.id);
      // A deleted subscription's secret and URL are gone from the operator's view: do not send for it again.
      if (current?.subscription && current.state === 'dead' && !d.subs.has(current.subscription)) throw new HttpError(409, `delivery ${req.params.id} belongs to deleted webhook ${current.subscription}`);
      try {
        return ok({ delivery: await d.outbox.retry(req.params.id) });
      } catch (err) {
        if (err instanceof RetryRefused) throw new HttpError(err.code === 'not_found' ? 404 : 409, err.message);
        throw err;
      }
    }),
    // "Send a test event to my webhooks" (both paths): recorded in the event log and fanned out like any event.
    route('POST', '/api/v1/events/test', (req) => testEvent(d, req)),
    route('POST', '/api/v1/webhooks/test', (req) => testEvent(d, req)),
    route('GET', '/api/v1/events', (req) => {
      const limit = req.query.limit ? Number(req.query.limit) : 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'limit must be an integer from 1 to 1000');
      return ok({ events: d.events.list(limit) });
    }),
    route('GET', '/api/v1/status', async () => {
      const { total, up, down } = d.registry.counts();
      return ok({
        version: d.version,
        nodes: { total, up, down },
        plugins: d.plugins.status(),
        // The queue may be in a database that is away: the status still answers, saying so below.
        outbox: { pending: await d.outbox.depth().catch(() => null) },
        link: { connected: d.link.connectedCount() },
        // This controller among the others on its store: id, lease, links per controller, store health.
        ...d.cluster.status(),
      });
    }),
  ];
}
