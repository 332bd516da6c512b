import { z, describeIssues } from '../sdk/index.ts';
import { APP_NAME } from './schema.ts';

const SHORT_NAME = /^[a-z][a-z0-9-]{0,29}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Lowercase registry/repo[:tag][@digest]; no whitespace or shell characters can reach the Engine.
const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[a-f0-9]{64})?$/;
/** `${app}`, `${secret.NAME}`, `${host.SIDECAR}` are the only placeholders env values may hold. */
const PLACEHOLDER = /\$\{([a-z]+)(?:\.([A-Za-z0-9_-]+))?\}/g;

const port = z
  .object({
    container: z.number().int().min(1).max(65535),
    /** What the port is for; `http` fills Websoft9's `port`, `db` its `db_port`. */
    role: z.enum(['http', 'https', 'db', 'admin', 'ssh', 'mail', 'other']),
    protocol: z.enum(['tcp', 'udp']).default('tcp'),
  })
  .strict();

const volume = z
  .object({
    /** Becomes the Docker volume `websoft9-<app>-<name>`, kept on uninstall unless purged. */
    name: z.string().regex(SHORT_NAME, 'volume names are lowercase letters, digits and dashes'),
    path: z.string().regex(/^\/[^\0]*$/, 'volume paths are absolute'),
  })
  .strict();

const health = z.discriminatedUnion('type', [
  z.object({ type: z.literal('http'), port: z.number().int().min(1).max(65535), path: z.string().startsWith('/').default('/'), expect: z.tuple([z.number().int(), z.number().int()]).default([200, 399]) }).strict(),
  z.object({ type: z.literal('tcp'), port: z.number().int().min(1).max(65535) }).strict(),
  /** Docker's own HEALTHCHECK, run inside the container (for sidecars without a published port). */
  z.object({ type: z.literal('cmd'), command: z.array(z.string().min(1)).min(1), intervalSec: z.number().int().min(1).max(300).default(5), retries: z.number().int().min(1).max(100).default(30) }).strict(),
  /** Healthy when the container is still up after `seconds`. */
  z.object({ type: z.literal('running'), seconds: z.number().int().min(0).max(600).default(3) }).strict(),
]);

const serviceFields = {
  image: z.string().max(255).regex(IMAGE_REF, 'not a valid image reference (lowercase repository, optional :tag and @sha256 digest)'),
  /** argv, never a shell string (a manifest may still name a shell explicitly). */
  command: z.array(z.string()).min(1).optional(),
  entrypoint: z.array(z.string()).min(1).optional(),
  env: z.record(z.string().regex(ENV_NAME, 'env names are letters, digits and underscores'), z.string().max(4096)).default({}),
  ports: z.array(port).max(10).default([]),
  volumes: z.array(volume).max(10).default([]),
  health: health.optional(),
  user: z.string().regex(/^[A-Za-z0-9_.:-]+$/).optional(),
};

const sidecar = z.object({ name: z.string().regex(SHORT_NAME, 'sidecar names are lowercase letters, digits and dashes'), ...serviceFields }).strict();

const secret = z
  .object({
    length: z.number().int().min(12).max(128).default(24),
    alphabet: z.enum(['alnum', 'hex']).default('alnum'),
  })
  .strict();

export const manifestSchema = z
  .object({
    name: z.string().regex(APP_NAME, 'app names match ^[a-z][a-z0-9-]{1,29}$'),
    title: z.string().min(1).max(80),
    description: z.string().max(500).optional(),
    version: z.string().max(40).optional(),
    ...serviceFields,
    /** Generated once per node and app, kept in the agent's store, shown only through the admin REST API. */
    secrets: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'secret names are lowercase letters, digits and underscores'), secret).default({}),
    sidecars: z.array(sidecar).max(5).default([]),
  })
  .strict()
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    m.sidecars.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sidecars', i, 'name'], message: `sidecar "${s.name}" is declared twice` });
      names.add(s.name);
    });
    const vols = new Set<string>();
    const services: Array<[Array<string | number>, Service]> = [[[], m], ...m.sidecars.map((s, i): [Array<string | number>, Service] => [['sidecars', i], s])];
    for (const [path, svc] of services) {
      svc.volumes.forEach((v, i) => {
        if (vols.has(v.name)) ctx.addIssue({ code: 'custom', path: [...path, 'volumes', i, 'name'], message: `volume "${v.name}" is declared twice in this app` });
        vols.add(v.name);
      });
      const seen = new Set<string>();
      svc.ports.forEach((p, i) => {
        const k = `${p.container}/${p.protocol}`;
        if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [...path, 'ports', i], message: `port ${k} is declared twice` });
        seen.add(k);
      });
      const h = svc.health;
      if (h && (h.type === 'http' || h.type === 'tcp') && !svc.ports.some((p) => p.container === h.port && p.protocol === 'tcp')) {
        ctx.addIssue({ code: 'custom', path: [...path, 'health', 'port'], message: `health port ${h.port} is not one of this container's tcp ports` });
      }
      for (const [k, v] of Object.entries(svc.env)) {
        for (const [, kind, arg] of v.matchAll(PLACEHOLDER)) {
          const bad =
            kind === 'app' ? arg !== undefined : kind === 'secret' ? !arg || !(arg in m.secrets) : kind === 'host' ? !arg || !names.has(arg) : true;
          if (bad) ctx.addIssue({ code: 'custom', path: [...path, 'env', k], message: `unknown placeholder \${${kind}${arg ? `.${arg}` : ''}} (use \${app}, \${secret.<declared>}, \${host.<sidecar>})` });
        }
      }
    }
    const total = services.reduce((a, [, s]) => a + s.ports.length, 0);
    if (total > 20) ctx.addIssue({ code: 'custom', path: ['ports'], message: `an app may publish at most 20 ports (this one has ${total})` });
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type Sidecar = z.infer<typeof sidecar>;
export type Service = Pick<Manifest, 'image' | 'command' | 'entrypoint' | 'env' | 'ports' | 'volumes' | 'health' | 'user'>;
export type Health = z.infer<typeof health>;

export function parseManifest(value: unknown, where = 'manifest'): Manifest {
  const r = manifestSchema.safeParse(value);
  if (!r.success) throw new Error(`invalid ${where}: ${describeIssues(r.error)}`);
  return r.data;
}

/** Container names Websoft9 uses: websoft9-<app> and websoft9-<app>-<sidecar>. */
export const containerName = (app: string, sidecarName?: string) => (sidecarName ? `websoft9-${app}-${sidecarName}` : `websoft9-${app}`);
export const networkName = (app: string) => `websoft9-${app}`;
export const volumeName = (app: string, vol: string) => `websoft9-${app}-${vol}`;

/** Fills the placeholders of env values; secrets go to the container only, never back to a caller. */
export function renderEnv(env: Record<string, string>, app: string, secrets: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => {
    const value = v.replace(PLACEHOLDER, (_all, kind: string, arg?: string) => {
      if (kind === 'app') return app;
      if (kind === 'secret') return secrets[arg!] ?? '';
      return containerName(app, arg);
    });
    return `${k}=${value}`;
  });
}

/** Every service of an app with the name it runs under, sidecars first so the main container finds them up. */
export function servicesOf(m: Manifest): Array<{ service: string; container: string; spec: Service }> {
  return [
    ...m.sidecars.map((s) => ({ service: s.name, container: containerName(m.name, s.name), spec: s as Service })),
    { service: 'main', container: containerName(m.name), spec: m as Service },
  ];
}
