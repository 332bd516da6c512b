import type { ProviderConfig } from '../config.ts';
import { fqdn, lineRecordName } from '../lines.ts';
import { AliyunProvider } from './aliyun.ts';
import { CloudflareProvider } from './cloudflare.ts';
import { DryRunProvider } from './dry-run.ts';
import { PdnsProvider } from './pdns.ts';
import type { DnsProvider, LineRef } from './provider.ts';

export type { DnsProvider, LineRef, LineRead, LineWrite, WriteOutcome } from './provider.ts';
export { lineKey, ProviderError } from './provider.ts';

export function createProvider(name: string, cfg: ProviderConfig): DnsProvider {
  switch (cfg.type) {
    case 'pdns':
      return new PdnsProvider(name, cfg);
    case 'aliyun':
      return new AliyunProvider(name, cfg);
    case 'cloudflare':
      return new CloudflareProvider(name, cfg);
    case 'dry-run':
      return new DryRunProvider(name, cfg);
  }
}

export function createProviders(providers: Record<string, ProviderConfig>): Map<string, DnsProvider> {
  return new Map(Object.entries(providers).map(([name, cfg]) => [name, createProvider(name, cfg)]));
}

/** The name a line is published at: the record itself on a provider with ISP lines (Aliyun), else its lineName. */
export function publishedName(cfg: ProviderConfig, ref: LineRef): string {
  return cfg.type === 'aliyun' ? fqdn(ref.record, ref.domain) : lineRecordName(cfg.lineName, ref.line, ref.record, ref.domain);
}
