/**
 * Alidns (Alibaba Cloud DNS), RPC API version 2015-01-09, signed with signature v1. Reads and updates
 * per line as CocoaSyncer did (`DescribeSubDomainRecords`, `UpdateDomainRecord`), and unlike it adds
 * a line that does not exist yet (`AddDomainRecord`) and removes extra values on a line
 * (`DeleteDomainRecord`) so a line never keeps answering with a dead node's address.
 */
import { randomUUID } from 'node:crypto';
import type { ProviderConfig } from '../config.ts';
import { fqdn } from '../lines.ts';
import { secretsIn, type Secret } from '../../sdk/secret.ts';
import { rpcTimestamp, signedQuery } from './aliyun-signature.ts';
import { callApi, errorText, planLineEdit, excerpt, groupBy, lineKey, mapLimit, ProviderError, type DnsProvider, type LineRead, type LineRef, type LineWrite, type WriteOutcome } from './provider.ts';

type AliyunConfig = Extract<ProviderConfig, { type: 'aliyun' }>;

export const ALIDNS_VERSION = '2015-01-09';
const PAGE_SIZE = 500;
/** Parallel API calls per read or write batch: Alidns throttles bursts per account. */
const IN_FLIGHT = 4;

/** One entry of DescribeSubDomainRecords' `DomainRecords.Record`. */
export interface AlidnsRecord {
  RecordId: string;
  RR: string;
  Type: string;
  Value: string;
  Line: string;
  TTL: number;
  Status: string;
}

export interface AliyunDeps {
  now?: () => Date;
  nonce?: () => string;
}

export class AliyunProvider implements DnsProvider {
  readonly type = 'aliyun' as const;
  readonly nativeLines = true;
  private readonly secrets: Secret[];
  private readonly now: () => Date;
  private readonly nonce: () => string;

  constructor(
    readonly name: string,
    private readonly cfg: AliyunConfig,
    deps: AliyunDeps = {},
  ) {
    this.secrets = secretsIn(cfg);
    this.now = deps.now ?? (() => new Date());
    this.nonce = deps.nonce ?? randomUUID;
  }

  /** One signed GET; an answer with `Code` (or a non-2xx status) is an error naming Action and Code. */
  async call(action: string, params: Record<string, string>): Promise<Record<string, unknown>> {
    const all: Record<string, string> = {
      Format: 'JSON',
      Version: ALIDNS_VERSION,
      AccessKeyId: this.cfg.accessKey.reveal(),
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      SignatureNonce: this.nonce(),
      Timestamp: rpcTimestamp(this.now()),
      Action: action,
      ...params,
    };
    const url = `${this.cfg.endpoint}/?${signedQuery('GET', all, this.cfg.accessSecret.reveal())}`;
    const answer = await callApi(this, this.secrets, action, url, { method: 'GET', headers: { accept: 'application/json' }, timeoutMs: this.cfg.timeoutMs });
    const body = answer.json as Record<string, unknown> | undefined;
    if (answer.status >= 200 && answer.status < 300 && body && body.Code === undefined) return body;
    const detail = body?.Code ? `${String(body.Code)}: ${String(body.Message ?? '')}${body.RequestId ? ` (RequestId ${String(body.RequestId)})` : ''}` : excerpt(answer.text);
    throw new ProviderError(this, action, `HTTP ${answer.status} ${detail}`, this.secrets);
  }

  /** Every record of a name, all pages. */
  async subDomainRecords(domain: string, record: string): Promise<AlidnsRecord[]> {
    const out: AlidnsRecord[] = [];
    for (let page = 1; ; page++) {
      const body = await this.call('DescribeSubDomainRecords', { SubDomain: fqdn(record, domain), DomainName: domain, PageNumber: String(page), PageSize: String(PAGE_SIZE) });
      const list = (body.DomainRecords as { Record?: AlidnsRecord[] } | undefined)?.Record ?? [];
      out.push(...list);
      if (list.length < PAGE_SIZE || out.length >= Number(body.TotalCount ?? 0)) return out;
    }
  }

  private static onLine(records: AlidnsRecord[], ref: LineRef): AlidnsRecord[] {
    // DISABLE records do not answer queries; CocoaSyncer skipped them too.
    return records.filter((r) => r.Status === 'ENABLE' && r.Type === ref.type && r.Line === ref.line);
  }

  async read(refs: LineRef[]): Promise<Map<string, LineRead>> {
    const out = new Map<string, LineRead>();
    const byName = [...groupBy(refs, (r) => `${r.record}\u0000${r.domain}`).values()];
    await mapLimit(byName, IN_FLIGHT, async (list) => {
      try {
        const records = await this.subDomainRecords(list[0].domain, list[0].record);
        for (const ref of list) {
          const mine = AliyunProvider.onLine(records, ref);
          out.set(lineKey(ref), { ok: true, values: mine.map((r) => r.Value), ttl: mine[0]?.TTL });
        }
      } catch (err) {
        for (const ref of list) out.set(lineKey(ref), { ok: false, error: errorText(err) });
      }
    });
    return out;
  }

  async write(writes: LineWrite[]): Promise<WriteOutcome[]> {
    const out = new Array<WriteOutcome>(writes.length);
    const byName = [...groupBy(writes.map((w, i) => ({ w, i })), (x) => `${x.w.ref.record}\u0000${x.w.ref.domain}`).values()];
    await mapLimit(byName, IN_FLIGHT, async (list) => {
      let records: AlidnsRecord[];
      try {
        // Record ids are read fresh: a write must not act on ids a hand edit has since removed.
        records = await this.subDomainRecords(list[0].w.ref.domain, list[0].w.ref.record);
      } catch (err) {
        for (const x of list) out[x.i] = { ok: false, error: errorText(err) };
        return;
      }
      for (const x of list) {
        try {
          await this.writeLine(x.w, AliyunProvider.onLine(records, x.w.ref));
          out[x.i] = { ok: true };
        } catch (err) {
          out[x.i] = { ok: false, error: errorText(err) };
        }
      }
    });
    return out;
  }

  private async writeLine(w: LineWrite, existing: AlidnsRecord[]): Promise<void> {
    const { ref } = w;
    const common = { RR: ref.record, Type: ref.type, TTL: String(w.ttl), Line: ref.line };
    const edit = planLineEdit(existing.map((r) => ({ id: r.RecordId, value: r.Value, ttl: r.TTL })), w.values, w.ttl);
    for (const u of edit.update) await this.call('UpdateDomainRecord', { RecordId: u.id, ...common, Value: u.value });
    for (const value of edit.add) await this.call('AddDomainRecord', { DomainName: ref.domain, ...common, Value: value });
    for (const id of edit.remove) await this.call('DeleteDomainRecord', { RecordId: id });
  }
}
