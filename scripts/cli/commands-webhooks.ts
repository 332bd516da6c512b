/** Client commands for webhook subscriptions and the delivery log. */
import { list, UsageError, wholeNumber } from './args.ts';
import { call } from './client.ts';
import { required, type Command } from './command.ts';
import { ago, out, table } from './format.ts';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const STATES = ['pending', 'delivered', 'dead'];

function deliveryRows(ds: any[]): Array<Record<string, unknown>> {
  return ds.map((d) => ({ ...d, created: ago(d.createdAt), result: d.lastError ?? (d.lastStatus ? `HTTP ${d.lastStatus}` : '') }));
}

export const webhookCommands: Command[] = [
  {
    path: ['webhooks', 'add'],
    summary: 'subscribe a URL to events; prints the signing secret once',
    details: 'Each delivery is a signed POST: X-Outpost-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>,\nwith X-Outpost-Delivery (same id on every retry) and X-Outpost-Event.',
    client: true,
    flags: {
      url: { type: 'string', value: 'URL', help: 'http(s) URL that receives the POSTs (required)' },
      events: { type: 'string', value: 'a,b', help: 'event names or patterns: node.down,node.up,plugin.* (default all: *)' },
      secret: { type: 'string', value: 'S', help: 'signing secret, 16-256 characters (default: generated)' },
      description: { type: 'string', value: 'TEXT', help: 'a note shown in listings' },
    },
    run: async ({ values, client, json }) => {
      const url = required(values, 'url', 'webhooks add');
      const r = await call(client, 'POST', '/api/v1/webhooks', { url, events: list(str(values.events)), secret: str(values.secret), description: str(values.description) });
      out(json, r, () => `webhook ${r.id} → ${r.url} for ${r.events.join(', ')}\nsigning secret (shown once): ${r.secret}`);
    },
  },
  {
    path: ['webhooks', 'list'],
    summary: 'list webhook subscriptions (never their secrets) and the known event names',
    client: true,
    run: async ({ client, json }) => {
      const r = await call(client, 'GET', '/api/v1/webhooks');
      out(json, r, () => `${table(r.webhooks.map((w: any) => ({ ...w, events: w.events.join(','), created: ago(w.createdAt) })), ['id', 'url', 'events', 'created', 'description'])}\nevents: ${r.events.join(', ')}`);
    },
  },
  {
    path: ['webhooks', 'delete'],
    args: ['ID'],
    summary: 'delete a subscription; its pending deliveries stop (marked dead)',
    client: true,
    run: async ({ positionals: [id], client, json }) => {
      const r = await call(client, 'DELETE', `/api/v1/webhooks/${encodeURIComponent(id)}`);
      out(json, r, () => `deleted ${r.deleted}`);
    },
  },
  {
    path: ['webhooks', 'test'],
    summary: 'emit a test.ping event; subscriptions to test.ping (or *) receive it through the outbox',
    client: true,
    flags: { message: { type: 'string', value: 'TEXT', help: 'text carried in the event (at most 200 characters)' } },
    run: async ({ values, client, json }) => {
      const r = await call(client, 'POST', '/api/v1/events/test', values.message === undefined ? {} : { message: String(values.message) });
      out(json, r, () => `emitted ${r.event}; see outpost deliveries for its deliveries`);
    },
  },
  {
    path: ['deliveries'],
    summary: 'the webhook delivery log, newest first',
    client: true,
    flags: {
      state: { type: 'string', value: 'S', help: 'only pending, delivered or dead' },
      webhook: { type: 'string', value: 'ID', help: "only this subscription's deliveries" },
      limit: { type: 'string', value: 'N', help: 'at most N entries, 1-1000 (default 100)' },
    },
    run: async ({ values, client, json }) => {
      const state = str(values.state);
      if (state !== undefined && !STATES.includes(state)) throw new UsageError(`--state must be one of ${STATES.join(', ')}, got "${state}"`);
      const q = new URLSearchParams();
      if (state) q.set('state', state);
      if (values.webhook) q.set('subscription', String(values.webhook));
      if (values.limit !== undefined) q.set('limit', String(wholeNumber(String(values.limit), '--limit', 1)));
      const r = await call(client, 'GET', `/api/v1/deliveries${q.size ? `?${q}` : ''}`);
      out(json, r, () => table(deliveryRows(r.deliveries), ['id', 'state', 'event', 'attempts', 'url', 'created', 'result']));
    },
  },
  {
    path: ['deliveries', 'show'],
    args: ['ID'],
    summary: 'one delivery in full (body included while it is in the outbox)',
    client: true,
    run: async ({ positionals: [id], client, json }) => {
      const r = await call(client, 'GET', `/api/v1/deliveries/${encodeURIComponent(id)}`);
      out(json, r, () =>
        Object.entries(r.delivery)
          .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join('\n'),
      );
    },
  },
  {
    path: ['deliveries', 'retry'],
    args: ['ID'],
    summary: 'retry a dead delivery (same id), or attempt a pending one now',
    client: true,
    run: async ({ positionals: [id], client, json }) => {
      const r = await call(client, 'POST', `/api/v1/deliveries/${encodeURIComponent(id)}/retry`);
      out(json, r, () => `delivery ${r.delivery.id} is ${r.delivery.state}; it will be attempted now`);
    },
  },
];
