/**
 * PowerDNS Authoritative through its HTTP API: one GET of the zone answers every line in it, and the
 * writes for one zone go in one PATCH of rrsets with `changetype: REPLACE` (a PATCH is one transaction
 * and one SOA serial bump). PowerDNS has no ISP lines: line L lives at the provider's `lineName`.
 */
import type { ProviderConfig } from '../config.ts';
import { lineRecordName } from '../lines.ts';
import { secretsIn, type Secret } from '../../sdk/secret.ts';
import { callApi, errorText, groupBy, excerpt, ProviderError, lineKey, type DnsProvider, type HttpAnswer, type LineRead, type LineRef, type LineWrite, type WriteOutcome } from './provider.ts';

type PdnsConfig = Extract<ProviderConfig, { type: 'pdns' }>;

interface RRset {
  name: string;
  type: string;
  ttl: number;
  records: Array<{ content: string; disabled: boolean }>;
}

export class PdnsProvider implements DnsProvider {
  readonly type = 'pdns' as const;
  readonly nativeLines = false;
  private readonly secrets: Secret[];

  constructor(
    readonly name: string,
    private readonly cfg: PdnsConfig,
  ) {
    this.secrets = secretsIn(cfg);
  }

  /** The absolute owner name (trailing dot) of a line's rrset. */
  rrsetName(ref: LineRef): string {
    return `${lineRecordName(this.cfg.lineName, ref.line, ref.record, ref.domain)}.`;
  }

  private zoneUrl(domain: string): string {
    return `${this.cfg.url}/api/v1/servers/${encodeURIComponent(this.cfg.serverId)}/zones/${encodeURIComponent(`${domain}.`)}`;
  }

  private async call(what: string, domain: string, method: string, body?: unknown): Promise<HttpAnswer> {
    const headers: Record<string, string> = { 'X-API-Key': this.cfg.apiKey.reveal(), accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const answer = await callApi(this, this.secrets, what, this.zoneUrl(domain), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), timeoutMs: this.cfg.timeoutMs });
    if (answer.status >= 200 && answer.status < 300) return answer;
    const message = (answer.json as { error?: unknown } | undefined)?.error;
    const hint = answer.status === 401 ? ' (wrong apiKey?)' : answer.status === 404 || answer.status === 422 ? ` (does zone ${domain}. exist on server "${this.cfg.serverId}"?)` : '';
    throw new ProviderError(this, what, `HTTP ${answer.status} ${typeof message === 'string' ? message : excerpt(answer.text)}${hint}`, this.secrets);
  }

  async read(refs: LineRef[]): Promise<Map<string, LineRead>> {
    const out = new Map<string, LineRead>();
    const byDomain = groupBy(refs, (r) => r.domain);
    await Promise.all(
      [...byDomain].map(async ([domain, list]) => {
        let rrsets: Map<string, RRset>;
        try {
          const answer = await this.call(`GET zone ${domain}.`, domain, 'GET');
          const zone = answer.json as { rrsets?: RRset[] } | undefined;
          if (!zone || !Array.isArray(zone.rrsets)) throw new ProviderError(this, `GET zone ${domain}.`, 'answer has no rrsets', this.secrets);
          rrsets = new Map(zone.rrsets.map((s) => [`${s.name.toLowerCase()}/${s.type}`, s]));
        } catch (err) {
          for (const r of list) out.set(lineKey(r), { ok: false, error: errorText(err) });
          return;
        }
        for (const r of list) {
          const set = rrsets.get(`${this.rrsetName(r)}/${r.type}`);
          out.set(lineKey(r), set ? { ok: true, values: set.records.filter((x) => !x.disabled).map((x) => x.content), ttl: set.ttl } : { ok: true, values: [] });
        }
      }),
    );
    return out;
  }

  async write(writes: LineWrite[]): Promise<WriteOutcome[]> {
    const out = new Array<WriteOutcome>(writes.length);
    const byDomain = groupBy(writes.map((w, i) => ({ w, i })), (x) => x.w.ref.domain);
    await Promise.all(
      [...byDomain].map(async ([domain, list]) => {
        try {
          await this.patch(domain, list.map((x) => x.w));
          for (const x of list) out[x.i] = { ok: true };
        } catch (err) {
          if (list.length === 1) {
            out[list[0].i] = { ok: false, error: errorText(err) };
            return;
          }
          // One bad rrset fails the whole PATCH: write the lines one by one so only the bad one fails.
          for (const x of list) {
            try {
              await this.patch(domain, [x.w]);
              out[x.i] = { ok: true };
            } catch (one) {
              out[x.i] = { ok: false, error: errorText(one) };
            }
          }
        }
      }),
    );
    return out;
  }

  private async patch(domain: string, writes: LineWrite[]): Promise<void> {
    const rrsets = writes.map((w) => ({
      name: this.rrsetName(w.ref),
      type: w.ref.type,
      ttl: w.ttl,
      changetype: 'REPLACE',
      records: w.values.map((content) => ({ content, disabled: false })),
    }));
    const names = writes.length === 1 ? `${rrsets[0].name} ${rrsets[0].type}` : `${writes.length} rrsets`;
    await this.call(`PATCH zone ${domain}. (${names})`, domain, 'PATCH', { rrsets });
  }
}
