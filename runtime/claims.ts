/**
 * What each plugin may name: event namespaces, metric prefixes and HTTP routes. Checked between
 * plugins when a host loads them (a collision fails the later plugin with a message naming both)
 * and on every registration (a name outside the plugin's claims is refused).
 */
import type { PluginSpec } from '../plugins/sdk/contract.ts';

export interface Claims {
  events: string[];
  metrics: string[];
  routes: string[];
}

/** Namespaces of the hosts' own events; no plugin may claim them. */
export const CORE_EVENT_NAMESPACES = ['node', 'plugin', 'test'];

const NAMESPACE = /^[a-z][a-z0-9-]*$/;
const METRIC_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function claimsOf(spec: PluginSpec): Claims {
  return {
    events: spec.claims?.events ?? [spec.name],
    metrics: spec.claims?.metrics ?? [`outpost_${spec.name.replace(/-/g, '_')}_`],
    routes: spec.claims?.routes ?? [`/api/v1/${spec.name}/*`],
  };
}

/** A spec's own consistency: well-formed claims, and every declared event inside a claimed namespace. */
export function checkSpecClaims(spec: PluginSpec): void {
  const c = claimsOf(spec);
  for (const ns of c.events) {
    if (!NAMESPACE.test(ns)) throw new Error(`claims.events: "${ns}" is not a namespace ([a-z][a-z0-9-]*)`);
    if (CORE_EVENT_NAMESPACES.includes(ns)) throw new Error(`claims.events: "${ns}" is a core event namespace`);
  }
  // Seed-compatible names are allowed (dns-sync keeps CocoaSyncer's cocoaSyncerStatus), so no outpost_ rule.
  for (const m of c.metrics) if (!METRIC_PREFIX.test(m)) throw new Error(`claims.metrics: "${m}" is not a metric name prefix`);
  for (const r of c.routes) if (!r.startsWith('/') || r.slice(0, -1).includes('*')) throw new Error(`claims.routes: "${r}" must be a path, or a prefix ending in *`);
  for (const event of Object.keys(spec.events ?? {})) {
    if (!c.events.includes(namespaceOf(event))) throw new Error(`event "${event}" is outside the plugin's event namespaces (${c.events.join(', ')})`);
  }
}

export function namespaceOf(event: string): string {
  const dot = event.indexOf('.');
  return dot < 0 ? event : event.slice(0, dot);
}

export function metricClaimed(c: Claims, name: string): boolean {
  return c.metrics.some((p) => name.startsWith(p));
}

/** Exact path, or under a `prefix*` claim. */
export function routeClaimed(c: Claims, path: string): boolean {
  return c.routes.some((r) => (r.endsWith('*') ? path.startsWith(r.slice(0, -1)) : path === r));
}

function routesOverlap(a: string, b: string): boolean {
  const pa = a.endsWith('*') ? a.slice(0, -1) : null;
  const pb = b.endsWith('*') ? b.slice(0, -1) : null;
  if (pa !== null && pb !== null) return pa.startsWith(pb) || pb.startsWith(pa);
  if (pa !== null) return b.startsWith(pa);
  if (pb !== null) return a.startsWith(pb);
  return a === b;
}

function prefixesOverlap(a: string, b: string): boolean {
  return a.startsWith(b) || b.startsWith(a);
}

/** The first claim of `mine` that overlaps one of `theirs`, described; undefined when they are apart. */
export function claimCollision(mine: Claims, theirs: Claims): string | undefined {
  for (const ns of mine.events) if (theirs.events.includes(ns)) return `event namespace "${ns}"`;
  for (const m of mine.metrics) for (const t of theirs.metrics) if (prefixesOverlap(m, t)) return `metric prefix "${m}" (overlaps "${t}")`;
  for (const r of mine.routes) for (const t of theirs.routes) if (routesOverlap(r, t)) return `route "${r}" (overlaps "${t}")`;
  return undefined;
}
