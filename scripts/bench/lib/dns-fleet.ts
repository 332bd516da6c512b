/**
 * The dns-sync benchmark's fleet: `services` services on one zone, every one managing all six lines,
 * and `nodes` nodes spread over the five ISP lines, every fourth also serving default. Addresses are
 * from TEST-NET-1 (192.0.2.0/24): they only ever sit in DNS answers, nothing is sent to them.
 */
import { dnsSyncConfig, type DnsSyncConfig } from '../../../plugins/dns-sync/config.ts';
import { ISPS } from '../../../plugins/dns-sync/lines.ts';

export const FLEET_ZONE = 'bench.test';

export const nodeName = (i: number) => `node-${String(i).padStart(2, '0')}`;

export function fleetConfig(p: { services: number; nodes: number; pdnsUrl: string; apiKey: string; upAfter: number }): DnsSyncConfig {
  const lineIsps = ISPS.filter((i) => i !== 'default');
  const nodes = Object.fromEntries(
    Array.from({ length: p.nodes }, (_, i) => [nodeName(i), { ISPs: [lineIsps[i % lineIsps.length], ...(i % 4 === 0 ? ['default' as const] : [])], networkType: 'IPV4' as const, address: `192.0.2.${i + 1}` }]),
  );
  const services = Array.from({ length: p.services }, (_, i) => ({
    serviceName: `svc-${String(i).padStart(3, '0')}`,
    domain: FLEET_ZONE,
    record: `s${String(i).padStart(3, '0')}`,
    platformProvider: 'pdns',
    ttl: 60,
    lines: [...ISPS],
  }));
  return dnsSyncConfig.parse({ providers: { pdns: { type: 'pdns', url: p.pdnsUrl, apiKey: p.apiKey } }, services, nodes, upAfter: p.upAfter });
}
