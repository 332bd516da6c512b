/**
 * Applications, in memory and in the SDK's durable log (a 0600 file under the plugin's data dir, as
 * every plugin file). The secretKey is revealed only to write the log and to sign; everywhere else the
 * record carries a Secret, which shows as `***`.
 */
import { Secret, z, type DurableLog } from '../sdk/index.ts';
import { newApplication, type Application } from './application.ts';
import type { AppCreateBody } from './schema.ts';

export const appRecord = z.object({
  appKey: z.string(),
  appName: z.string(),
  payload: z.string(),
  secretKey: z.string(),
  linkUrl: z.string(),
  step: z.number().int(),
  retryTotal: z.number().int(),
  remark: z.string(),
  createdAt: z.number(),
});
export type AppRecord = z.infer<typeof appRecord>;

export type OpenAppLog = (load: (r: AppRecord) => void, snapshot: () => Iterable<AppRecord>) => Promise<DurableLog<AppRecord>>;

const toRecord = (a: Application): AppRecord => ({ ...a, secretKey: a.secretKey.reveal() });

export class AppBook {
  private readonly apps = new Map<string, Application>();
  private log!: DurableLog<AppRecord>;

  static async open(openLog: OpenAppLog): Promise<AppBook> {
    const book = new AppBook();
    book.log = await openLog(
      (r) => book.apps.set(r.appKey, { ...r, secretKey: new Secret(r.secretKey) }),
      () => [...book.apps.values()].map(toRecord),
    );
    return book;
  }

  get(appKey: string): Application | undefined {
    return this.apps.get(appKey);
  }

  list(): Application[] {
    return [...this.apps.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Creates an application; resolves with the create answer (the only place its secretKey is shown) once on disk. */
  async create(body: AppCreateBody): Promise<{ app: Application; answer: Record<string, string> }> {
    const made = newApplication(body, this.apps.values());
    // In memory at once, before the write: a second create of the name is refused even while this one
    // is written, and a compaction running meanwhile finds it (nobody knows its appKey yet).
    this.apps.set(made.app.appKey, made.app);
    try {
      await this.log.append([toRecord(made.app)]);
    } catch (err) {
      this.apps.delete(made.app.appKey);
      throw err;
    }
    return made;
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
