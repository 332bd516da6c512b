/**
 * ISP lines and record names: CocoaSyncer's ISP codes, the Aliyun line names they map to, the record
 * types a node's networkType serves, and where a line lives on a provider without ISP lines.
 */

/** The ISP codes a node declares (CocoaSyncer's `ISPs`; its `None` is dropped: such a node serves no line). */
export const ISPS = ['default', 'CT', 'CU', 'CMCC', 'CNEdu', 'OverSea'] as const;
export type Isp = (typeof ISPS)[number];

/** Aliyun's line names, used as the line's name everywhere (events, status, record names). */
export const LINES = ['default', 'telecom', 'unicom', 'mobile', 'edu', 'oversea'] as const;
export type Line = (typeof LINES)[number];

/** CocoaSyncer's `cronUpdateDNS.go` mapping. */
export const LINE_OF_ISP: Readonly<Record<Isp, Line>> = {
  default: 'default',
  CT: 'telecom',
  CU: 'unicom',
  CMCC: 'mobile',
  CNEdu: 'edu',
  OverSea: 'oversea',
};

export const NETWORK_TYPES = ['IPV4', 'IPV6', 'Both'] as const;
export type NetworkType = (typeof NETWORK_TYPES)[number];
export type RecordType = 'A' | 'AAAA';

export function recordTypesOf(networkType: NetworkType): RecordType[] {
  if (networkType === 'IPV4') return ['A'];
  if (networkType === 'IPV6') return ['AAAA'];
  return ['A', 'AAAA'];
}

export function linesOf(isps: readonly Isp[]): Line[] {
  return LINES.filter((line) => isps.some((isp) => LINE_OF_ISP[isp] === line));
}

/** The record name relative to the zone; `@` is the zone apex, as in Aliyun's RR. */
export function fqdn(record: string, domain: string): string {
  return record === '@' ? domain : `${record}.${domain}`;
}

export const DEFAULT_LINE_NAME = '{line}.{record}';

/**
 * Where line L is published on a provider without ISP lines: the default line at the record itself,
 * any other line at the template (`{line}.{record}` by default) under the domain. At the apex
 * `{record}` expands to nothing and the dot next to it goes too (`telecom.example.test`).
 */
export function lineRecordName(template: string, line: Line, record: string, domain: string): string {
  if (line === 'default') return fqdn(record, domain);
  const rel = template
    .replaceAll('{line}', line)
    .replaceAll('{record}', record === '@' ? '' : record)
    .split('.')
    .filter((label) => label !== '')
    .join('.');
  return `${rel}.${domain}`;
}
