/**
 * Link presence: which controller holds which nodes' links, with those nodes' plugin states and
 * capabilities. Each controller keeps one row of `outpost_presence` with an expiry of three intervals:
 * a controller that dies drops out when its row expires. Writes grow with the number of controllers,
 * not of agents or their heartbeats: the whole row is written only when a link opened or closed or a
 * linked node's plugin states changed (debounced, so a burst of relinks is one write, and at most
 * one every PRESENCE_MIN_GAP_MS), and otherwise only its expiry is renewed, once per interval. Its
 * `rev` changes with every full write, so the same round trip reads the other rows' bodies only when
 * they changed. A full write is also notified (PRESENCE_NOTICE), so other controllers read it at once
 * instead of at their next beat: a node relinked to another controller is reachable through every
 * controller within a quarter of a second.
 */
import type { Database } from '../storage/postgres/database.ts';
import { STORE_CHANNEL } from '../storage/postgres/store-listener.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import type { Capabilities } from '../../plugins/sdk/capabilities.ts';
import type { PluginStatus } from '../link.ts';

/** What this controller says of a node linked here. */
export interface LinkedNode {
  plugins: PluginStatus[];
  capabilities?: Capabilities;
}

export interface ControllerPresence {
  id: string;
  /** Node ids whose link it holds. */
  links: string[];
  /** Where it answers (its URL as it announced it). */
  url?: string;
  /** Epoch ms at which the row expires unless written again. */
  expiresAt: number;
}

/** A node linked to another live controller. */
export interface RemoteNode extends LinkedNode {
  controller: string;
}

/** The name other controllers hear a full write under (STORE_CHANNEL, `<name> <rev>`): no store has a `~`. */
export const PRESENCE_NOTICE = '~presence';
const WRITE = `
WITH w AS (
  INSERT INTO outpost_presence (controller, links, info, nodes, rev, expires_at) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::float8 / 1000))
  ON CONFLICT (controller) DO UPDATE SET links = EXCLUDED.links, info = EXCLUDED.info, nodes = EXCLUDED.nodes, rev = EXCLUDED.rev, expires_at = EXCLUDED.expires_at
  RETURNING rev
)
SELECT pg_notify('${STORE_CHANNEL}', '${PRESENCE_NOTICE} ' || rev) FROM w`;
const RENEW = `UPDATE outpost_presence SET expires_at = now() + make_interval(secs => $3::float8 / 1000) WHERE controller = $1 AND rev = $2`;
/** Bodies only of the rows whose rev differs from the one known here ($1, $2: controllers and revs known). */
const READ = `
SELECT p.controller, p.rev::text AS rev, (extract(epoch FROM p.expires_at) * 1000)::float8 AS expires_at,
  CASE WHEN k.rev IS DISTINCT FROM p.rev THEN p.links END AS links,
  CASE WHEN k.rev IS DISTINCT FROM p.rev THEN p.info END AS info,
  CASE WHEN k.rev IS DISTINCT FROM p.rev THEN p.nodes END AS nodes
FROM outpost_presence p LEFT JOIN unnest($1::text[], $2::bigint[]) AS k(controller, rev) ON k.controller = p.controller
WHERE p.expires_at > now() ORDER BY p.controller`;

/** How long a change waits for the next ones before the row is written: one write for a burst of relinks. */
export const PRESENCE_DEBOUNCE_MS = 30;
/**
 * The least time between two full writes. A full write serialises every link this controller holds
 * (10,000 of them at the bench's size) and every other controller reads it at once: while thousands
 * of agents link, rewriting every 30 ms cost each controller a large part of a core.
 */
export const PRESENCE_MIN_GAP_MS = 250;

interface Seen extends ControllerPresence {
  rev: string;
  nodes: Map<string, LinkedNode>;
}

export class Presence {
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private seen: Seen[] = [];
  /** Node id → the other controller holding its link, as of the last read. */
  private where = new Map<string, RemoteNode>();
  private whereIds: Set<string> | undefined;
  private error: string | undefined;
  private writing: Promise<void> | undefined;
  /** Links or states changed since the last full write (the first beat writes in full). */
  private dirty = true;
  private rev = 0;
  private readChain: Promise<void> = Promise.resolve();
  /** performance.now() of the last full write's start. */
  private lastFullWrite = -Infinity;
  private noticeQueued = false;
  private stopped = false;
  private readonly changeListeners = new Set<() => void>();
  private readonly lostListeners = new Set<(ids: string[]) => void>();

  constructor(
    private readonly db: Database,
    private readonly self: string,
    private readonly links: () => string[],
    private readonly linked: (id: string) => LinkedNode | undefined,
    private readonly url: () => string | undefined,
    private readonly intervalMs: number,
    private readonly log: Log,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.tick();
  }

  /**
   * A controller rewrote its row (rev): the rows are read now, once for a burst of notices. This
   * controller's own notice is skipped (a rev another controller shares only delays to the next beat).
   */
  notified(rev: number): void {
    if (this.stopped || this.noticeQueued || String(rev) === String(this.rev)) return;
    this.noticeQueued = true;
    this.readInTurn(() => (this.noticeQueued = false)).catch(() => undefined);
  }

  /** Reads run one after another, so an older view never lands after a newer one. */
  private readInTurn(first?: () => void): Promise<void> {
    const next = this.readChain.then(() => {
      first?.();
      return this.read();
    });
    this.readChain = next.catch(() => undefined);
    return next;
  }

  /** A link here opened or closed, or a linked node's plugin states changed: written within the debounce. */
  changed(): void {
    this.dirty = true;
    if (this.soon || this.stopped) return;
    const wait = Math.max(PRESENCE_DEBOUNCE_MS, this.lastFullWrite + PRESENCE_MIN_GAP_MS - performance.now());
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.tick();
    }, wait);
    this.soon.unref();
  }

  /** Called with the other controllers whose rows went (expired: died; or removed: stopped) since the last read. */
  onLost(fn: (ids: string[]) => void): () => void {
    this.lostListeners.add(fn);
    return () => this.lostListeners.delete(fn);
  }

  /** Called after each read that changed what other controllers hold. */
  onChange(fn: () => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  private tick(): void {
    // One beat at a time: a change during a beat is written by the next one.
    if (this.writing) {
      this.writing.then(() => (this.dirty ? this.changed() : undefined), () => undefined);
      return;
    }
    this.writing = this.beat().finally(() => {
      this.writing = undefined;
    });
  }

  /** The controllers seen at the last beat (this one included), and why the last beat failed if it did. */
  view(): { controllers: ControllerPresence[]; error?: string } {
    return { controllers: this.seen.map(({ id, links, url, expiresAt }) => ({ id, links, ...(url ? { url } : {}), expiresAt })), ...(this.error ? { error: this.error } : {}) };
  }

  /** Node ids linked to other live controllers as of the last beat. */
  elsewhere(): Set<string> {
    return (this.whereIds ??= new Set(this.where.keys()));
  }

  /** The other live controller holding a node's link, with what it says of the node. */
  linkedAt(id: string): RemoteNode | undefined {
    return this.where.get(id);
  }

  /** Other live controllers as of the last beat. */
  others(): Array<{ id: string; url?: string; links: number }> {
    return this.seen.filter((c) => c.id !== this.self).map((c) => ({ id: c.id, ...(c.url ? { url: c.url } : {}), links: c.links.length }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.writing;
    // Gone at once rather than at the expiry: its links are no longer held here.
    await this.db.query('DELETE FROM outpost_presence WHERE controller = $1', [this.self]).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    try {
      await this.write();
      await this.readInTurn();
      if (this.error) this.log.info('link presence written again');
      this.error = undefined;
    } catch (err) {
      if (!this.error) this.log.warn({ err: (err as Error).message }, 'could not write link presence; retrying every interval');
      this.error = (err as Error).message;
    }
  }

  private async write(): Promise<void> {
    const ttl = this.intervalMs * 3;
    if (!this.dirty) {
      const r = await this.db.query(RENEW, [this.self, String(this.rev), ttl]);
      // The row went (expired and removed, or the database was replaced): written in full below.
      if (r.rowCount) return;
    }
    this.dirty = false;
    this.lastFullWrite = performance.now();
    const ids = this.links();
    const url = this.url();
    // A new rev also after a restart (readers may remember the old one): the clock, kept increasing.
    this.rev = Math.max(this.rev + 1, Date.now());
    try {
      await this.db.query(WRITE, [this.self, JSON.stringify(ids), JSON.stringify(url ? { url } : {}), JSON.stringify(packNodes(ids, this.linked)), String(this.rev), ttl]);
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  private async read(): Promise<void> {
    const known = this.seen;
    const r = await this.db.query<{ controller: string; rev: string; expires_at: number; links: string | null; info: string | null; nodes: string | null }>(READ, [known.map((c) => c.id), known.map((c) => c.rev)]);
    const before = new Map(known.map((c) => [c.id, c]));
    let moved = r.rows.length !== known.length;
    this.seen = r.rows.map((row) => {
      const old = before.get(row.controller);
      if (row.links === null && old) return { ...old, expiresAt: row.expires_at };
      moved = true;
      const links = parseList(row.links ?? '[]');
      return { id: row.controller, rev: row.rev, links, ...parseInfo(row.info ?? '{}'), nodes: unpackNodes(links, row.nodes ?? '{}'), expiresAt: row.expires_at };
    });
    if (!moved) return;
    const now = new Set(this.seen.map((c) => c.id));
    const lost = known.filter((c) => c.id !== this.self && !now.has(c.id)).map((c) => c.id);
    const where = new Map<string, RemoteNode>();
    for (const c of this.seen) {
      if (c.id === this.self) continue;
      for (const id of c.links) where.set(id, { controller: c.id, ...(c.nodes.get(id) ?? { plugins: [] }) });
    }
    this.where = where;
    this.whereIds = undefined;
    for (const fn of this.changeListeners) fn();
    if (lost.length) for (const fn of this.lostListeners) fn(lost);
  }
}

/**
 * Nodes' states, compact: most nodes run the same plugins in the same states, so each distinct list of
 * plugin states (and of capabilities) is written once and nodes name it by index, in the order of links.
 */
interface PackedNodes {
  states: PluginStatus[][];
  caps: Capabilities[];
  /** Per link: [index in states, index in caps or -1]. */
  of: Array<[number, number]>;
}

export function packNodes(ids: string[], linked: (id: string) => LinkedNode | undefined): PackedNodes {
  const states: PluginStatus[][] = [];
  const caps: Capabilities[] = [];
  const stateIdx = new Map<string, number>();
  const capIdx = new Map<string, number>();
  const index = <T extends object>(list: T[], seen: Map<string, number>, v: T): number => {
    const key = keyOf(v);
    let i = seen.get(key);
    if (i === undefined) {
      i = list.push(v) - 1;
      seen.set(key, i);
    }
    return i;
  };
  const of = ids.map((id): [number, number] => {
    const n = linked(id);
    return [index(states, stateIdx, n?.plugins ?? []), n?.capabilities ? index(caps, capIdx, n.capabilities) : -1];
  });
  return { states, caps, of };
}

/**
 * A list's JSON, remembered per list object: the registry keeps a node's plugin states as the same
 * array until they change, so a rewrite of 10,000 links serialises each distinct list about once.
 */
const keys = new WeakMap<object, string>();
function keyOf(v: object): string {
  let k = keys.get(v);
  if (k === undefined) keys.set(v, (k = JSON.stringify(v)));
  return k;
}

export function unpackNodes(links: string[], text: string): Map<string, LinkedNode> {
  const out = new Map<string, LinkedNode>();
  let p: Partial<PackedNodes>;
  try {
    p = JSON.parse(text) as Partial<PackedNodes>;
  } catch {
    return out;
  }
  const states = Array.isArray(p.states) ? p.states : [];
  const caps = Array.isArray(p.caps) ? p.caps : [];
  const of = Array.isArray(p.of) ? p.of : [];
  links.forEach((id, i) => {
    const [s, c] = Array.isArray(of[i]) ? of[i] : [-1, -1];
    const plugins = Array.isArray(states[s]) ? states[s] : [];
    const capabilities = caps[c];
    out.set(id, { plugins, ...(capabilities && typeof capabilities === 'object' ? { capabilities } : {}) });
  });
  return out;
}

function parseList(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function parseInfo(text: string): { url?: string } {
  try {
    const v = JSON.parse(text) as { url?: unknown };
    return typeof v?.url === 'string' ? { url: v.url } : {};
  } catch {
    return {};
  }
}
