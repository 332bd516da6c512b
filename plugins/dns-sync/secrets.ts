/**
 * The one list of dns-sync's write-only fields, and the two ways they are kept out of sight: config
 * reads show them redacted, and any text built from a provider's answer is scrubbed of their values
 * (a cloud API may echo an AccessKey ID back in an error message).
 */
import { REDACTED } from '../sdk/redact.ts';
import type { DnsSyncConfig, ProviderConfig } from './config.ts';

/** Top-level secret fields of the plugin config. */
export const CONFIG_SECRET_FIELDS = ['cocoaSecret'] as const;

/** Secret fields per provider type. */
export const PROVIDER_SECRET_FIELDS = {
  pdns: ['apiKey'],
  aliyun: ['accessKey', 'accessSecret'],
  cloudflare: ['token'],
  'dry-run': [],
} as const satisfies Record<ProviderConfig['type'], readonly string[]>;

type Fields = Record<string, unknown>;

function secretFieldsOf(provider: { type: string }): readonly string[] {
  return (PROVIDER_SECRET_FIELDS as Record<string, readonly string[]>)[provider.type] ?? [];
}

function blank(obj: Fields, fields: readonly string[]): Fields {
  const out = { ...obj };
  for (const f of fields) if (out[f] !== undefined) out[f] = REDACTED;
  return out;
}

/** The config as a config read shows it: every secret replaced by `***`. */
export function redactConfig<C extends Pick<DnsSyncConfig, 'providers'>>(config: C): C {
  const providers = Object.fromEntries(Object.entries(config.providers).map(([name, p]) => [name, blank(p as Fields, secretFieldsOf(p))]));
  return { ...blank(config as unknown as Fields, CONFIG_SECRET_FIELDS), providers } as unknown as C;
}

/** Every secret value in the config (for scrubbing text). */
export function secretValues(config: Pick<DnsSyncConfig, 'providers'> & { cocoaSecret?: string }): string[] {
  const out: string[] = [];
  if (config.cocoaSecret) out.push(config.cocoaSecret);
  for (const p of Object.values(config.providers)) out.push(...providerSecretValues(p));
  return out;
}

export function providerSecretValues(provider: ProviderConfig): string[] {
  const fields = provider as unknown as Fields;
  return secretFieldsOf(provider)
    .map((f) => fields[f])
    .filter((v): v is string => typeof v === 'string' && v !== '');
}

/** Replaces each secret, raw or percent-encoded (as it would sit in a URL or a string-to-sign), by `***`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    for (const form of new Set([s, encodeURIComponent(s), encodeURIComponent(encodeURIComponent(s))])) out = out.split(form).join(REDACTED);
  }
  return out;
}
