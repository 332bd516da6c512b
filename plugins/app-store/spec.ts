import { defineSpec, z } from '../sdk/index.ts';
import { manifestSchema } from './manifest.ts';
import { APP_NAME, appSnapshot, appStoreConfig } from './schema.ts';

const app = z.string().regex(APP_NAME, 'app names match ^[a-z][a-z0-9-]{1,29}$');

/** Refusals are answers, not errors, so the API can say "0" plainly. */
export const commandResult = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), app: appSnapshot }),
  z.object({ ok: z.literal(false), reason: z.enum(['exists', 'installing', 'not-installed', 'ports', 'remove-failed']), message: z.string(), app: appSnapshot.optional() }),
]);
export type CommandResult = z.output<typeof commandResult>;

/** What the app.* events carry: Websoft9's fields for the app, and where it runs. */
export const appEvent = z.object({
  node: z.string(),
  node_id: z.string(),
  appName: z.string(),
  containerName: z.string(),
  status: z.enum(['0', '1', '2', '3']),
  port: z.string(),
  db_port: z.string(),
  info: z.string(),
  ports: z.array(z.object({ service: z.string(), role: z.string(), container: z.number(), host: z.number(), protocol: z.string() })),
  purged: z.boolean().optional(),
  ts: z.number(),
});

export const spec = defineSpec({
  name: 'app-store',
  config: appStoreConfig,
  reports: {
    /** Every app of the node, sent at start. */
    snapshot: z.object({ apps: z.array(appSnapshot) }),
    progress: appSnapshot,
    installed: appSnapshot,
    failed: appSnapshot,
    uninstalled: appSnapshot.extend({ purged: z.boolean() }),
  },
  commands: {
    install: { args: z.object({ app, manifest: manifestSchema }), result: commandResult },
    uninstall: { args: z.object({ app, purge: z.boolean().default(false) }), result: commandResult },
    info: { args: z.object({ app }), result: appSnapshot.nullable() },
    list: { args: z.object({}), result: z.array(appSnapshot) },
    uninstallAll: { args: z.object({ purge: z.boolean().default(false) }), result: z.array(z.object({ app: z.string(), ok: z.boolean(), message: z.string() })) },
    /** The app's generated secrets, for the admin REST API only. */
    secrets: { args: z.object({ app }), result: z.object({ app: z.string(), secrets: z.record(z.string(), z.string()) }) },
  },
  events: { 'app.installed': appEvent, 'app.failed': appEvent, 'app.uninstalled': appEvent },
  claims: {
    // Websoft9-era names kept: webhook subscriptions name app.*, dashboards read outpost_apps.
    events: ['app'],
    metrics: ['outpost_app_store_', 'outpost_apps'],
    routes: ['/installApp', '/uninstallApp', '/getAppInfo', '/getAllAppInfo', '/uninstallAllApp', '/api/v1/apps', '/api/v1/apps/*'],
  },
});
export type Spec = typeof spec;
