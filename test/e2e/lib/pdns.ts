/**
 * A real PowerDNS Authoritative server for e2e tests and benchmarks (recipe: seeds/cocoasyncer-facts.md
 * §9): its own sqlite database in a temp dir, DNS and the HTTP API on free loopback ports, caches off
 * so an answer shows the database at once. Needs the Debian packages pdns-server,
 * pdns-backend-sqlite3, sqlite3 and dnsutils (test/e2e/run.sh installs them); a missing one fails
 * with its name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from '../../helpers/cluster.ts';

const SCHEMA = '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql';

export interface Pdns {
  /** UDP and TCP port of the DNS listener on 127.0.0.1. */
  dnsPort: number;
  /** The webserver (API under /api/v1), e.g. http://127.0.0.1:PORT. */
  url: string;
  apiKey: string;
  serverId: 'localhost';
  dir: string;
  /** Creates a Native zone (name without the trailing dot) and waits until DNS answers its SOA. */
  createZone(name: string): Promise<void>;
  /** `dig @127.0.0.1 -p PORT +short NAME TYPE`, one answer per element. */
  dig(name: string, type?: string): Promise<string[]>;
  /** The zone's SOA serial as DNS answers it. */
  soaSerial(zone: string): Promise<number>;
  /** API requests PowerDNS logged so far with this method (e.g. PATCH): each PATCH is one write. */
  apiRequests(method: string): number;
  /** The server's own output (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

function need(cmd: string, pkg: string): string {
  const r = spawnSync('sh', ['-c', 'command -v "$0"', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} not found on PATH: install the Debian package "${pkg}" (test/e2e/run.sh does)`);
  return r.stdout.trim();
}

/** A port free for both TCP and UDP on 127.0.0.1 (DNS needs both). */
async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const tcp = createServer();
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const port = (tcp.address() as { port: number }).port;
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false));
      udp.bind(port, '127.0.0.1', () => r(true));
    });
    udp.close();
    await new Promise((r) => tcp.close(r));
    if (ok) return port;
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1');
}

export async function startPdns(): Promise<Pdns> {
  const pdnsServer = process.env.PDNS_SERVER || need('pdns_server', 'pdns-server');
  const sqlite3 = need('sqlite3', 'sqlite3');
  const dig = need('dig', 'dnsutils');
  if (!existsSync(SCHEMA)) throw new Error(`${SCHEMA} is missing: install the Debian package "pdns-backend-sqlite3"`);

  const dir = await mkdtemp(join(tmpdir(), 'outpost-pdns-'));
  const db = join(dir, 'pdns.sqlite3');
  const schema = spawnSync(sqlite3, [db], { input: await readFile(SCHEMA, 'utf8'), encoding: 'utf8' });
  if (schema.status !== 0) throw new Error(`sqlite3 could not create the PowerDNS schema: ${schema.stderr}`);
  const apiKey = randomBytes(16).toString('hex');

  // Another process may take a port between the probe and pdns' bind: try again with new ports.
  for (let attempt = 1; ; attempt++) {
    const dnsPort = await freeDnsPort();
    const webPort = await freePort();
    await writeFile(
      join(dir, 'pdns.conf'),
      [
        'launch=gsqlite3',
        `gsqlite3-database=${db}`,
        'local-address=127.0.0.1',
        `local-port=${dnsPort}`,
        'api=yes',
        `api-key=${apiKey}`,
        'webserver=yes',
        'webserver-address=127.0.0.1',
        `webserver-port=${webPort}`,
        'webserver-allow-from=127.0.0.0/8',
        'webserver-loglevel=normal',
        'loglevel=6',
        // No security poll: it would query the system resolver, i.e. leave loopback.
        'security-poll-suffix=',
        'cache-ttl=0',
        'query-cache-ttl=0',
        'negquery-cache-ttl=0',
        'zone-cache-refresh-interval=0',
        `socket-dir=${dir}`,
        '',
      ].join('\n'),
    );
    let out = '';
    const child: ChildProcess = spawn(pdnsServer, [`--config-dir=${dir}`, '--daemon=no', '--guardian=no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let exited = false;
    child.on('exit', () => (exited = true));
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);

    const url = `http://127.0.0.1:${webPort}`;
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${url}/api/v1/servers/localhost${path}`, { ...init, headers: { 'X-API-Key': apiKey, 'content-type': 'application/json', ...(init.headers ?? {}) }, signal: AbortSignal.timeout(10_000) });

    const deadline = Date.now() + 20_000;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      try {
        if ((await api('')).status === 200) {
          ready = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    if (!ready) {
      child.kill('SIGKILL');
      process.off('exit', killOnExit);
      if (attempt < 3 && /address already in use|Unable to bind/i.test(out)) continue;
      await rm(dir, { recursive: true, force: true });
      throw new Error(`pdns_server did not answer its API within 20 s (exited: ${exited}):\n${out.slice(-3000)}`);
    }

    const digOnce = (name: string, type: string): string[] => {
      const r = spawnSync(dig, ['@127.0.0.1', '-p', String(dnsPort), '+short', '+time=2', '+tries=1', name, type], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(`dig ${name} ${type} failed (${r.status}): ${r.stdout}${r.stderr}`);
      return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith(';'));
    };

    const pdns: Pdns = {
      dnsPort,
      url,
      apiKey,
      serverId: 'localhost',
      dir,
      async createZone(name) {
        const res = await api('/zones', { method: 'POST', body: JSON.stringify({ name: `${name}.`, kind: 'Native', nameservers: [`ns1.${name}.`] }) });
        if (res.status !== 201) throw new Error(`creating zone ${name}: HTTP ${res.status} ${await res.text()}`);
        for (let i = 0; i < 100 && digOnce(name, 'SOA').length === 0; i++) await sleep(100);
        if (digOnce(name, 'SOA').length === 0) throw new Error(`zone ${name} created but DNS does not answer its SOA`);
      },
      async dig(name, type = 'A') {
        return digOnce(name, type);
      },
      async soaSerial(zone) {
        const soa = digOnce(zone, 'SOA');
        if (soa.length !== 1) throw new Error(`no SOA for ${zone}: ${JSON.stringify(soa)}`);
        return Number(soa[0].split(/\s+/)[2]);
      },
      apiRequests(method) {
        return out.split('\n').filter((l) => l.includes(`"${method} /api/v1/`)).length;
      },
      output: () => out,
      async stop() {
        process.off('exit', killOnExit);
        if (!exited) {
          const gone = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await Promise.race([gone, sleep(5000)]);
          if (!exited) child.kill('SIGKILL');
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
    return pdns;
  }
}
