/**
 * Cloudflare API v4 with an API token (Bearer). Cloudflare has no ISP lines: line L lives at the
 * provider's `lineName`. Records are listed by name, patched in place, created when missing and extra
 * values on a line deleted; records are created unproxied (DNS must answer the node's own address).
 */
import type { ProviderConfig } from '../config.ts';
import { lineRecordName } from '../lines.ts';
import { secretsIn, type Secret } from '../../sdk/secret.ts';
import { callApi, errorText, planLineEdit, excerpt, groupBy, lineKey, mapLimit, ProviderError, type DnsProvider, type LineRead, type LineRef, type LineWrite, type WriteOutcome } from './provider.ts';

type CloudflareConfig = Extract<ProviderConfig, { type: 'cloudflare' }>;

/** One DNS record as v4 lists it (the fields used here). */
export interface CfRecord {
  id: string;
  type: string;
  name: string;
  content: string;
  ttl: number;
}

interface Envelope<T> {
  success: boolean;
  errors?: Array<{ code?: number; message?: string }>;
  result: T;
  result_info?: { page?: number; total_pages?: number };
}

const PER_PAGE = 100;
/** Parallel calls per batch; Cloudflare's API allows 1200 requests per 5 minutes per user. */
const IN_FLIGHT = 4;

export class CloudflareProvider implements DnsProvider {
  readonly type = 'cloudflare' as const;
  readonly nativeLines = false;
  private readonly secrets: Secret[];
  private readonly zones = new Map<string, Promise<string>>();

  constructor(
    readonly name: string,
    private readonly cfg: CloudflareConfig,
  ) {
    this.secrets = secretsIn(cfg);
  }

  recordName(ref: LineRef): string {
    return lineRecordName(this.cfg.lineName, ref.line, ref.record, ref.domain);
  }

  private async api<T>(what: string, method: string, path: string, body?: unknown): Promise<Envelope<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.cfg.token.reveal()}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const answer = await callApi(this, this.secrets, what, `${this.cfg.endpoint}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), timeoutMs: this.cfg.timeoutMs });
    const env = answer.json as Envelope<T> | undefined;
    if (answer.status >= 200 && answer.status < 300 && env?.success === true) return env;
    const errors = env?.errors?.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    throw new ProviderError(this, what, `HTTP ${answer.status} ${errors || excerpt(answer.text)}`, this.secrets);
  }

  private zoneId(domain: string): Promise<string> {
    const known = this.cfg.zoneIds[domain];
    if (known) return Promise.resolve(known);
    let p = this.zones.get(domain);
    if (!p) {
      p = this.api<Array<{ id: string; name: string }>>(`find zone ${domain}`, 'GET', `/zones?name=${encodeURIComponent(domain)}`).then((env) => {
        const zone = env.result.find((z) => z.name === domain);
        if (!zone) throw new ProviderError(this, `find zone ${domain}`, 'no such zone for this token (set zoneIds to name it)', this.secrets);
        return zone.id;
      });
      // A failed lookup is retried next time rather than cached.
      p.catch(() => this.zones.delete(domain));
      this.zones.set(domain, p);
    }
    return p;
  }

  /** Every A/AAAA record at one name, all pages. */
  async recordsAt(domain: string, name: string): Promise<{ zone: string; records: CfRecord[] }> {
    const zone = await this.zoneId(domain);
    const records: CfRecord[] = [];
    for (let page = 1; ; page++) {
      const env = await this.api<CfRecord[]>(`list records ${name}`, 'GET', `/zones/${zone}/dns_records?name=${encodeURIComponent(name)}&per_page=${PER_PAGE}&page=${page}`);
      records.push(...env.result.filter((r) => r.type === 'A' || r.type === 'AAAA'));
      if (page >= (env.result_info?.total_pages ?? 1)) return { zone, records };
    }
  }

  async read(refs: LineRef[]): Promise<Map<string, LineRead>> {
    const out = new Map<string, LineRead>();
    const byName = [...groupBy(refs, (r) => `${this.recordName(r)}\u0000${r.domain}`).values()];
    await mapLimit(byName, IN_FLIGHT, async (list) => {
      try {
        const { records } = await this.recordsAt(list[0].domain, this.recordName(list[0]));
        for (const ref of list) {
          const mine = records.filter((r) => r.type === ref.type);
          out.set(lineKey(ref), { ok: true, values: mine.map((r) => r.content), ttl: mine[0]?.ttl });
        }
      } catch (err) {
        for (const ref of list) out.set(lineKey(ref), { ok: false, error: errorText(err) });
      }
    });
    return out;
  }

  async write(writes: LineWrite[]): Promise<WriteOutcome[]> {
    return mapLimit(writes, IN_FLIGHT, async (w): Promise<WriteOutcome> => {
      try {
        await this.writeLine(w);
        return { ok: true };
      } catch (err) {
        return { ok: false, error: errorText(err) };
      }
    });
  }

  private async writeLine(w: LineWrite): Promise<void> {
    const name = this.recordName(w.ref);
    const { zone, records } = await this.recordsAt(w.ref.domain, name);
    const existing = records.filter((r) => r.type === w.ref.type);
    const edit = planLineEdit(existing.map((r) => ({ id: r.id, value: r.content, ttl: r.ttl })), w.values, w.ttl);
    const what = `${name} ${w.ref.type}`;
    for (const u of edit.update) await this.api(`update ${what}`, 'PATCH', `/zones/${zone}/dns_records/${u.id}`, { content: u.value, ttl: w.ttl });
    for (const value of edit.add) await this.api(`create ${what}`, 'POST', `/zones/${zone}/dns_records`, { type: w.ref.type, name, content: value, ttl: w.ttl, proxied: false });
    for (const id of edit.remove) await this.api(`delete ${what} record ${id}`, 'DELETE', `/zones/${zone}/dns_records/${id}`);
  }
}
