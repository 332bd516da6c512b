import { isIP } from 'node:net';

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/**
 * A probe target must be an IP literal or a DNS hostname. Anything else (a leading '-', spaces,
 * shell characters) is refused, because icmp targets end up as an argument of the system ping.
 */
export function isValidTarget(value: string): boolean {
  if (typeof value !== 'string' || value.length === 0 || value.length > 253) return false;
  if (value.startsWith('-')) return false;
  if (isIP(value)) return true;
  const host = value.endsWith('.') ? value.slice(0, -1) : value;
  return host.split('.').every((l) => LABEL.test(l));
}
