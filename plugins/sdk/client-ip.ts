/**
 * Who is calling: the socket peer, or — only when that peer is a proxy the operator listed in
 * `trustProxy` — the client it names in X-Forwarded-For. Kept free of hyper-express so the agent's
 * node:http server can use it too.
 */
import { BlockList, isIP, isIPv4 } from 'node:net';

/** One spelling per address: IPv4 dotted (also for IPv4-mapped IPv6, as dual-stack sockets report them), IPv6 compressed. */
export function normalizeIp(ip: string): string {
  const s = ip.trim();
  if (isIPv4(s) || isIP(s) !== 6) return s;
  const host = new URL(`http://[${s}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const hi = parseInt(mapped[1], 16);
  const lo = parseInt(mapped[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function isLoopback(ip: string): boolean {
  const n = normalizeIp(ip);
  return n === '::1' || n.startsWith('127.');
}

/** Headers a proxy adds when it relays a request; a request carrying one did not come from the peer itself. */
const RELAY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip'];

/**
 * A caller on this very host talking to us directly: the socket peer is loopback and nobody relayed the
 * request. A reverse proxy on the same host also connects from loopback, so a forwarded address never
 * counts, whatever it says; a local client that sends such a header itself just loses the exemption.
 */
export function isLocalCaller(req: { ip: string; peer: string; headers: Record<string, string> }): boolean {
  return isLoopback(req.peer) && req.ip === req.peer && !RELAY_HEADERS.some((h) => req.headers[h] !== undefined);
}

/** Why entry is not an address or CIDR block, or undefined when it is one. */
export function proxyEntryProblem(entry: string): string | undefined {
  const [addr, bits, extra] = entry.split('/');
  const family = isIP(addr);
  if (!family || extra !== undefined) return `"${entry}" is not an IP address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8)`;
  if (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))) return `"${entry}" has a prefix length out of range`;
  return undefined;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: string[] = []) {
    for (const entry of entries) {
      const problem = proxyEntryProblem(entry);
      if (problem) throw new Error(`trustProxy: ${problem}`);
      const [addr, bits] = entry.split('/');
      const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.list.addAddress(normalizeIp(addr), type);
      else this.list.addSubnet(normalizeIp(addr), Number(bits), type);
    }
    this.empty = entries.length === 0;
  }

  has(ip: string): boolean {
    const family = isIP(ip);
    return family !== 0 && this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client's address. X-Forwarded-For is read only when the peer is trusted, from the right: each hop
   * was written by the proxy to its right, so the first one that is not itself a trusted proxy is the
   * client; anything left of it is whatever the client chose to send. A malformed hop ends the walk.
   */
  clientIp(peer: string, forwardedFor: string | undefined): string {
    if (this.empty || !forwardedFor || !this.has(peer)) return peer;
    let client = peer;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeIp(withoutPort(hops[i].trim()));
      if (!isIP(hop)) break;
      client = hop;
      if (!this.has(hop)) break;
    }
    return client;
  }
}

/** "1.2.3.4:5678" and "[::1]:80" as some proxies write them; a bare IPv6 address is left alone. */
function withoutPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1];
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop);
  return v4 ? v4[1] : hop;
}
