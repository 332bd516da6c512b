/**
 * The controller's `store` setting: lowdb files under the data dir (the embedded default), or a
 * PostgreSQL database. `OUTPOST_STORE_URL` in the environment wins over the config file's URL (and
 * alone selects PostgreSQL), so the password can stay out of config files.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';
import { urlProblem } from './postgres/url.ts';
import { Secret, secret, secretUrl } from '../../plugins/sdk/secret.ts';

/** PEM text, or the path of a file holding it. */
const pem = z.string().min(1).max(64 * 1024);

const Ssl = z.union([
  z.boolean(),
  z
    .object({
      rejectUnauthorized: z.boolean().optional(),
      ca: pem.optional(),
      cert: pem.optional(),
      key: pem.optional(),
      servername: z.string().min(1).max(255).optional(),
    })
    .strict(),
]);

const storeUrl = z.string().superRefine((v, ctx) => {
  const problem = urlProblem(v);
  // The message never quotes the value: it holds a password.
  if (problem) ctx.addIssue({ code: 'custom', message: `store url ${problem}` });
});

export const StoreConfig = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('lowdb') }).strict(),
    z
      .object({
        kind: z.literal('postgres'),
        /** postgres://user:password@host:port/database; OUTPOST_STORE_URL overrides it. */
        url: secret(storeUrl).optional(),
        ssl: Ssl.optional(),
        poolSize: z.number().int().min(2).max(200).default(10),
        /** A connection attempt or query taking longer counts as the database being unavailable. */
        timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
      })
      .strict(),
  ])
  .default({ kind: 'lowdb' });
export type StoreConfig = z.infer<typeof StoreConfig>;

export type ResolvedStore = { kind: 'lowdb' } | { kind: 'postgres'; url: Secret; ssl?: ConnectionOptions | boolean; poolSize: number; timeoutMs: number };

/** The store to open: the config's, with OUTPOST_STORE_URL taking precedence. Throws naming what is missing. */
export function resolveStore(config: StoreConfig, env: NodeJS.ProcessEnv = process.env): ResolvedStore {
  const fromEnv = env.OUTPOST_STORE_URL?.trim();
  if (fromEnv) {
    const problem = urlProblem(fromEnv);
    if (problem) throw new Error(`OUTPOST_STORE_URL ${problem.replace(/^store url /, '')}`);
  }
  if (config.kind === 'lowdb' && !fromEnv) return { kind: 'lowdb' };
  const pg = config.kind === 'postgres' ? config : { poolSize: 10, timeoutMs: 10_000, url: undefined, ssl: undefined };
  const url = fromEnv ? secretUrl(fromEnv) : pg.url;
  if (!url) throw new Error('store.kind is "postgres" but no URL is set: put it in store.url or in the environment as OUTPOST_STORE_URL');
  return { kind: 'postgres', url, ...(pg.ssl !== undefined ? { ssl: tlsOptions(pg.ssl) } : {}), poolSize: pg.poolSize, timeoutMs: pg.timeoutMs };
}

function tlsOptions(ssl: z.infer<typeof Ssl>): ConnectionOptions | boolean {
  if (typeof ssl === 'boolean') return ssl;
  const read = (v: string | undefined, what: string) => {
    if (v === undefined || v.includes('-----BEGIN')) return v;
    try {
      return readFileSync(v, 'utf8');
    } catch (err) {
      throw new Error(`store.ssl.${what}: cannot read ${v}: ${(err as Error).message}`);
    }
  };
  const { ca, cert, key, ...rest } = ssl;
  return { ...rest, ...(ca ? { ca: read(ca, 'ca') } : {}), ...(cert ? { cert: read(cert, 'cert') } : {}), ...(key ? { key: read(key, 'key') } : {}) };
}
