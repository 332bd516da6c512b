/**
 * Link presence: which controller holds which nodes' links. Each controller writes its whole list in
 * one row of `outpost_presence` once per interval, with an expiry of three intervals: writes grow with
 * the number of controllers, not of agents or their heartbeats. A controller that dies drops out when
 * its row expires. The same round trip reads the others' rows, for the status and for the watchdog.
 */
import type { Database } from '../storage/postgres/database.ts';
import type { Log } from '../../plugins/sdk/log.ts';

export interface ControllerPresence {
  id: string;
  /** Node ids whose link it holds. */
  links: string[];
  /** Where it answers (its URL as it announced it). */
  url?: string;
  /** Epoch ms at which the row expires unless written again. */
  expiresAt: number;
}

const WRITE = `
INSERT INTO outpost_presence (controller, links, info, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4::float8 / 1000))
ON CONFLICT (controller) DO UPDATE SET links = EXCLUDED.links, info = EXCLUDED.info, expires_at = EXCLUDED.expires_at`;
const READ = `SELECT controller, links, info, (extract(epoch FROM expires_at) * 1000)::float8 AS expires_at FROM outpost_presence WHERE expires_at > now() ORDER BY controller`;

export class Presence {
  private timer: NodeJS.Timeout | undefined;
  private seen: ControllerPresence[] = [];
  private error: string | undefined;
  private writing: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly self: string,
    private readonly links: () => string[],
    private readonly url: () => string | undefined,
    private readonly intervalMs: number,
    private readonly log: Log,
  ) {}

  start(): void {
    const tick = () => {
      this.writing = this.beat().finally(() => {
        this.writing = undefined;
      });
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  /** The controllers seen at the last beat (this one included), and why the last beat failed if it did. */
  view(): { controllers: ControllerPresence[]; error?: string } {
    return { controllers: this.seen, ...(this.error ? { error: this.error } : {}) };
  }

  /** Node ids linked to other live controllers as of the last beat. */
  elsewhere(): Set<string> {
    return new Set(this.seen.filter((c) => c.id !== this.self).flatMap((c) => c.links));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
    // Gone at once rather than at the expiry: its links are no longer held here.
    await this.db.query('DELETE FROM outpost_presence WHERE controller = $1', [this.self]).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const url = this.url();
    try {
      await this.db.query(WRITE, [this.self, JSON.stringify(this.links()), JSON.stringify(url ? { url } : {}), this.intervalMs * 3]);
      const r = await this.db.query<{ controller: string; links: string; info: string; expires_at: number }>(READ);
      this.seen = r.rows.map((row) => ({ id: row.controller, links: parseList(row.links), ...parseInfo(row.info), expiresAt: row.expires_at }));
      if (this.error) this.log.info('link presence written again');
      this.error = undefined;
    } catch (err) {
      if (!this.error) this.log.warn({ err: (err as Error).message }, 'could not write link presence; retrying every interval');
      this.error = (err as Error).message;
    }
  }
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
