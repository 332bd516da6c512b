/**
 * A history (plugins/sdk/durable/history.ts) on PostgreSQL: rows of `outpost_store_history` under the
 * history's name (a store's archive() writes there too, under the store's name). Appends of a turn
 * share one INSERT. Like the files, which keep the current file and one rotated generation, the rows
 * are trimmed to the newest twice `maxBytes` once that much more has been appended.
 */
import type { History } from '../../../plugins/sdk/durable/history.ts';
import { GroupCommit } from '../../../plugins/sdk/durable/group-commit.ts';
import { parseRecordJson } from '../../../plugins/sdk/durable/record-json.ts';
import type { PgContext } from './context.ts';

const TRIM = `
DELETE FROM outpost_store_history WHERE store = $1 AND seq < (
  SELECT coalesce(min(seq), 0) FROM (
    SELECT seq, sum(length(data) + 1) OVER (ORDER BY seq DESC) AS newer FROM outpost_store_history WHERE store = $1
  ) t WHERE newer <= $2
)`;

const TAIL = `
SELECT data FROM (
  SELECT seq, data, sum(length(data) + 1) OVER (ORDER BY seq DESC) AS newer FROM outpost_store_history WHERE store = $1
) t WHERE newer <= $2 ORDER BY seq`;

export class PgHistory<T> implements History<T> {
  private sinceTrim = 0;
  private readonly batch = new GroupCommit<string>((texts) => this.write(texts));

  constructor(
    private readonly ctx: PgContext,
    readonly name: string,
    /** Infinity: never trimmed (a store's archive, unbounded as its file is). */
    private readonly maxBytes: number,
  ) {}

  append(records: T[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return this.batch.add(records.map((r) => JSON.stringify(r) ?? 'null'));
  }

  /** Waits for the appends made so far to be written (or to have failed). */
  settled(): Promise<void> {
    return this.batch.settled();
  }

  async tail(maxBytes = 1024 * 1024): Promise<T[]> {
    try {
      const r = await this.ctx.db.query<{ data: string }>(TAIL, [this.name, maxBytes]);
      return r.rows.map((row) => parseRecordJson(row.data) as T);
    } catch (err) {
      throw this.ctx.failed(`history ${this.name}`, err);
    }
  }

  private async write(texts: string[]): Promise<void> {
    try {
      await this.ctx.db.query('INSERT INTO outpost_store_history (store, data) SELECT $1, d FROM unnest($2::text[]) WITH ORDINALITY AS t(d, i) ORDER BY i', [this.name, texts]);
      for (const t of texts) this.sinceTrim += t.length + 1;
      if (this.sinceTrim > this.maxBytes) {
        this.sinceTrim = 0;
        await this.ctx.db.query(TRIM, [this.name, 2 * this.maxBytes]);
      }
      this.ctx.ok();
    } catch (err) {
      throw this.ctx.failed(`history ${this.name}`, err);
    }
  }
}
