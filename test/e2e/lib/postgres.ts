/**
 * A real PostgreSQL server for e2e tests: a throwaway cluster (initdb) in a temp dir, listening on a
 * free loopback port (and a socket in that dir only), started and stopped by the test with pg_ctl.
 * PostgreSQL refuses to run as root, so as root (how run.sh runs) every server command runs as the
 * `postgres` user of the Debian package (runuser); otherwise as the current user.
 *
 * Two roles: the cluster's superuser (for the test's own checks and tampering) and `outpost`, a
 * plain role with a password owning the databases the controllers use, as an operator would set it up.
 * Needs the Debian package `postgresql` (15; test/e2e/run.sh installs it); a missing one fails naming it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import { freePort, TestController } from '../../helpers/cluster.ts';

export interface Postgres {
  port: number;
  /** The application role and its password. */
  user: string;
  password: string;
  /** URL of a database owned by the application role (created by createDatabase). */
  url(database: string): string;
  /** A fresh database owned by the application role; resolves with its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Runs SQL as the superuser in a database; resolves with the rows. */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(database: string, text: string, values?: unknown[]): Promise<R[]>;
  /** Stops the server (fast shutdown: connections are cut, as when the database host goes away). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
  /** The server log (for failure messages). */
  logTail(): Promise<string>;
}

/** Where initdb and pg_ctl are; throws naming the package to install when they are not there. */
export function postgresBinDir(): string {
  const fromEnv = process.env.PG_BINDIR;
  if (fromEnv && existsSync(join(fromEnv, 'initdb'))) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error('PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin nor in $PG_BINDIR: install the Debian package "postgresql" (`apt-get install postgresql`; test/e2e/run.sh --deps does)');
  return join(root, versions[0], 'bin');
}

/** `durable`: fsync on, as in production (benchmarks); tests run without it (the cluster is thrown away). */
export async function startPostgres(opts: { durable?: boolean } = {}): Promise<Postgres> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const osUser = asRoot ? 'postgres' : userInfo().username;
  const run = (cmd: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] as const : [join(bin, cmd), args] as const;
    const r = spawnSync(full[0], [...full[1]], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };

  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const owned = (path: string) => asRoot && chownSync(path, id('-u'), id('-g'));
  const dir = await mkdtemp(join(tmpdir(), 'outpost-pg-'));
  owned(dir);
  const data = join(dir, 'data');
  const superPassword = randomBytes(16).toString('hex');
  const password = randomBytes(16).toString('hex');
  const pwfile = join(dir, 'pw');
  await writeFile(pwfile, superPassword + '\n', { mode: 0o600 });
  owned(pwfile);
  run('initdb', ['-D', data, '-U', osUser, '--auth-local=peer', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C.UTF-8', ...(opts.durable ? [] : ['--no-sync'])]);
  await rm(pwfile);
  const logFile = join(dir, 'server.log');
  let port = 0;

  const fsync = opts.durable ? 'on' : 'off';
  const serve = () => run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${fsync} -c max_connections=200`, 'start']);
  const stopNow = (mode: 'fast' | 'immediate') => {
    if (existsSync(join(data, 'postmaster.pid'))) run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  };
  // A test that dies without destroy() must not leave a server behind.
  const onExit = () => {
    try {
      stopNow('immediate');
    } catch {
      // best effort at exit
    }
  };
  process.once('exit', onExit);

  // Another process may take the port between the probe and the bind: try again with another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      serve();
      break;
    } catch (err) {
      if (attempt >= 3) throw new Error(`${(err as Error).message}\n${await readFile(logFile, 'utf8').catch(() => '')}`);
    }
  }
  const superUrl = (db: string) => `postgres://${encodeURIComponent(osUser)}:${superPassword}@127.0.0.1:${port}/${db}`;
  const sql = async <R extends pg.QueryResultRow>(database: string, text: string, values?: unknown[]): Promise<R[]> => {
    const c = new pg.Client({ connectionString: superUrl(database) });
    await c.connect();
    try {
      return (await c.query<R>(text, values)).rows;
    } finally {
      await c.end();
    }
  };
  await sql('postgres', `CREATE ROLE outpost LOGIN PASSWORD '${password}'`);
  let n = 0;

  return {
    get port() {
      return port;
    },
    user: 'outpost',
    password,
    url: (database) => `postgres://outpost:${password}@127.0.0.1:${port}/${database}`,
    async createDatabase(name = `outpost_${process.pid}_${++n}`) {
      await sql('postgres', `CREATE DATABASE ${pg.escapeIdentifier(name)} OWNER outpost`);
      return `postgres://outpost:${password}@127.0.0.1:${port}/${name}`;
    },
    sql,
    async stop() {
      stopNow('fast');
    },
    async start() {
      serve();
    },
    async destroy() {
      process.removeListener('exit', onExit);
      try {
        stopNow('immediate');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    logTail: async () => (await readFile(logFile, 'utf8').catch(() => '')).slice(-4000),
  };
}

/**
 * One server for a test file: started before its tests, destroyed after them. The object answers
 * for the server once it runs (used before, it says so).
 */
export function postgresForFile(): Postgres {
  let server: Postgres | undefined;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.destroy());
  const it = (): Postgres => {
    if (!server) throw new Error('PostgreSQL is not started yet: use it inside a test');
    return server;
  };
  return {
    get port() {
      return it().port;
    },
    get user() {
      return it().user;
    },
    get password() {
      return it().password;
    },
    url: (database) => it().url(database),
    createDatabase: (name) => it().createDatabase(name),
    sql: (database, text, values) => it().sql(database, text, values),
    stop: () => it().stop(),
    start: () => it().start(),
    destroy: () => it().destroy(),
    logTail: () => it().logTail(),
  };
}

/**
 * Starts controllers on the database at url, all with the same config and admin token (only port and
 * data dir differ, as an operator runs them). One that does not come up fails with what the database
 * was doing then (a lock wait shows there).
 */
export function controllersOn(server: Postgres, url: string, opts: { config?: Record<string, unknown>; adminToken: string; env?: Record<string, string> }): () => Promise<TestController> {
  return async () => {
    try {
      return await TestController.start({ env: { OUTPOST_STORE_URL: url, ...opts.env }, ...(opts.config ? { config: opts.config } : {}), adminToken: opts.adminToken });
    } catch (err) {
      const activity = await server
        .sql(new URL(url).pathname.slice(1), 'SELECT application_name, state, wait_event_type, wait_event, left(query, 200) AS query FROM pg_stat_activity WHERE datname = current_database()')
        .catch((e) => `unreadable: ${(e as Error).message}`);
      throw new Error(`${(err as Error).message}\npg_stat_activity: ${JSON.stringify(activity, null, 1)}`);
    }
  };
}
