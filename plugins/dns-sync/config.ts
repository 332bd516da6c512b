/**
 * dns-sync's config (issue 13 §Config): the CocoaSyncer secret, DNS providers, managed services and
 * the nodes' line declarations. Every failure names the field; secret fields are secret() (plugins/sdk/secret.ts).
 */
import { z } from 'zod';
import { secret } from '../sdk/secret.ts';
import { ISPS, NETWORK_TYPES, DEFAULT_LINE_NAME } from './lines.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

const name = (what: string) => z.string().regex(NAME, `${what} must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);

/** Lower-cased, no trailing dot: providers add the dot where their API wants one. */
const domain = z
  .string()
  .transform((s) => s.toLowerCase().replace(/\.$/, ''))
  .refine((s) => s.length <= 253 && s.includes('.') && s.split('.').every((l) => LABEL.test(l)), 'domain must be a DNS name with at least two labels, e.g. example.test');

/** Relative to the domain; `@` is the apex (Aliyun's RR). */
const record = z
  .string()
  .transform((s) => s.toLowerCase())
  .refine((s) => s === '@' || s.split('.').every((l) => LABEL.test(l)), 'record must be "@" or DNS labels, e.g. "www"');

/** Plain http(s) without user:password: a credential in a URL would end up in logs and errors. */
const endpoint = z
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http:// or https:// URL')
  .refine((u) => !new URL(u).username && !new URL(u).password, 'must not carry a user or password (use the provider\'s key fields)')
  .transform((u) => u.replace(/\/+$/, ''));

const lineName = z
  .string()
  .refine((s) => s.includes('{line}'), 'lineName must contain "{line}"')
  .refine((s) => /^[a-z0-9{}._-]+$/.test(s), 'lineName may hold only lower-case letters, digits, ".", "_", "-", "{line}" and "{record}"')
  .default(DEFAULT_LINE_NAME);

const timeoutMs = z.number().int().min(100).max(120_000).default(10_000);

const pdnsProvider = z
  .object({
    type: z.literal('pdns'),
    /** The PowerDNS webserver, e.g. http://127.0.0.1:8081 (the API lives under /api/v1). */
    url: endpoint,
    apiKey: secret(),
    serverId: z.string().regex(/^[A-Za-z0-9._-]+$/, 'serverId must be a PowerDNS server id such as "localhost"').default('localhost'),
    lineName,
    timeoutMs,
  })
  .strict();

const aliyunProvider = z
  .object({
    type: z.literal('aliyun'),
    /** AccessKey ID. */
    accessKey: secret(),
    accessSecret: secret(),
    /** Alidns RPC endpoint; tests point it at a local server. */
    endpoint: endpoint.default('https://alidns.aliyuncs.com'),
    timeoutMs,
  })
  .strict();

const cloudflareProvider = z
  .object({
    type: z.literal('cloudflare'),
    /** API token with Zone.DNS edit permission on the services' zones. */
    token: secret(),
    /** Zone id per domain; a domain not listed is looked up once with GET /zones?name=. */
    zoneIds: z.record(domain, z.string().regex(/^[A-Za-z0-9]{1,64}$/, 'zone id must be alphanumeric')).default({}),
    endpoint: endpoint.default('https://api.cloudflare.com/client/v4'),
    lineName,
    timeoutMs,
  })
  .strict();

const dryRunProvider = z
  .object({
    type: z.literal('dry-run'),
    lineName,
  })
  .strict();

export const providerConfig = z.discriminatedUnion('type', [pdnsProvider, aliyunProvider, cloudflareProvider, dryRunProvider]);
export type ProviderConfig = z.infer<typeof providerConfig>;
export type ProviderType = ProviderConfig['type'];

const isp = z.enum(ISPS);

const service = z
  .object({
    /** Free text as in CocoaSyncer (its example is "测试"): no control characters, no surrounding spaces. */
    serviceName: z
      .string()
      .min(1)
      .max(64)
      .refine((s) => s === s.trim() && !/\p{Cc}/u.test(s), 'serviceName must not have control characters or surrounding spaces'),
    domain,
    record,
    /** A key of `providers`. */
    platformProvider: name('platformProvider'),
    ttl: z.number().int().min(1).max(86_400).default(60),
    /** The prober monitor whose quorum on a node's record also decides that node's liveness for this service. */
    probe: z.object({ app_name: z.string().min(1), group_id: z.union([z.string().min(1), z.number().int()]).transform(String) }).strict().optional(),
    /** Lines to manage; by default `default` plus every line some declared node serves. */
    lines: z.array(isp).min(1).optional(),
  })
  .strict();
export type ServiceConfig = z.infer<typeof service>;

const declarationFields = {
  ISPs: z.array(isp).min(1).transform((l) => [...new Set(l)]),
  networkType: z.enum(NETWORK_TYPES).default('IPV4'),
  /** The public address DNS points at: IPv4 for IPV4 and Both, IPv6 for IPV6. */
  address: z.string().min(1),
  /** The IPv6 address of a `Both` node. */
  address6: z.string().min(1).optional(),
};

function checkAddresses(n: { networkType: string; address: string; address6?: string }, ctx: z.RefinementCtx): void {
  const v4 = (s: string) => z.ipv4().safeParse(s).success;
  const v6 = (s: string) => z.ipv6().safeParse(s).success;
  if (n.networkType === 'IPV6') {
    if (!v6(n.address)) ctx.addIssue({ code: 'custom', path: ['address'], message: `networkType IPV6 needs an IPv6 address, got "${n.address}"` });
    if (n.address6 !== undefined) ctx.addIssue({ code: 'custom', path: ['address6'], message: 'address6 is only for networkType Both' });
    return;
  }
  if (!v4(n.address)) ctx.addIssue({ code: 'custom', path: ['address'], message: `networkType ${n.networkType} needs an IPv4 address, got "${n.address}"` });
  if (n.networkType === 'Both' && (n.address6 === undefined || !v6(n.address6))) {
    ctx.addIssue({ code: 'custom', path: ['address6'], message: 'networkType Both needs address6 (an IPv6 address)' });
  }
  if (n.networkType === 'IPV4' && n.address6 !== undefined) ctx.addIssue({ code: 'custom', path: ['address6'], message: 'address6 is only for networkType Both' });
}

export const nodeDeclaration = z.object(declarationFields).strict().superRefine(checkAddresses);
/** The same declaration as an agent reports it: not strict, so a newer agent's extra fields pass the boundary. */
export const reportedDeclaration = z.object(declarationFields).superRefine(checkAddresses);
export type NodeDeclaration = z.infer<typeof nodeDeclaration>;

/** goim's backoff shape (seconds), for failed line writes. */
const retry = z
  .object({
    baseDelay: z.number().min(0.1).max(600).default(2),
    factor: z.number().min(1).max(10).default(2),
    jitter: z.number().min(0).max(1).default(0.2),
    maxDelay: z.number().min(1).max(3600).default(120),
  })
  .strict();

export const dnsSyncConfig = z
  .object({
    /** The secret getClusterInfo callers present; unset: getClusterInfo answers 401 to everyone. */
    cocoaSecret: secret(z.string().min(8, 'cocoaSecret must have at least 8 characters')).optional(),
    /** The leader's name on the CocoaSyncer surfaces (badge, status page, getClusterInfo). */
    nodeName: name('nodeName').default('outpost'),
    providers: z.record(name('provider name'), providerConfig).default({}),
    services: z.array(service).default([]),
    /** Keyed by node name as GET /api/v1/nodes shows it; wins over what an agent declares itself. */
    nodes: z.record(name('node name'), nodeDeclaration).default({}),
    /** Seconds a node must have been up before it takes a line back (recovery hysteresis). */
    upAfter: z.number().min(0).max(3600).default(30),
    /** Seconds between full reconciles that repair drift made by hand in the provider. */
    reconcileInterval: z.number().min(5).max(86_400).default(60),
    retry: retry.default({ baseDelay: 2, factor: 2, jitter: 0.2, maxDelay: 120 }),
    /**
     * Read by the agent half only: this node's own ISPs, networkType and address, sent to the
     * controller, where an entry for the node in `nodes` wins.
     */
    self: nodeDeclaration.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seenName = new Set<string>();
    const seenRecord = new Map<string, string>();
    c.services.forEach((s, i) => {
      if (!(s.platformProvider in c.providers)) {
        const known = Object.keys(c.providers);
        ctx.addIssue({ code: 'custom', path: ['services', i, 'platformProvider'], message: `unknown provider "${s.platformProvider}" (configured: ${known.length ? known.join(', ') : 'none'})` });
      }
      if (seenName.has(s.serviceName)) ctx.addIssue({ code: 'custom', path: ['services', i, 'serviceName'], message: `duplicate serviceName "${s.serviceName}"` });
      seenName.add(s.serviceName);
      // Two services on one name would overwrite each other's lines forever.
      const where = `${s.platformProvider}:${s.record}.${s.domain}`;
      const other = seenRecord.get(where);
      if (other) ctx.addIssue({ code: 'custom', path: ['services', i, 'record'], message: `record ${s.record} of ${s.domain} on ${s.platformProvider} is already managed by service "${other}"` });
      seenRecord.set(where, s.serviceName);
    });
  });
export type DnsSyncConfig = z.infer<typeof dnsSyncConfig>;
export type DnsSyncConfigInput = z.input<typeof dnsSyncConfig>;

