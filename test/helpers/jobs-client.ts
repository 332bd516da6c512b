/**
 * A Serendipity-Job client of a real controller for tests: creates applications and sends signed
 * requests. Given the jobs plugin's own port (`listen`), it signs exactly as the original's clients do
 * (`app_key`); on the controller's port it sends `app-key`, the one name the controller's server takes.
 */
import { signedHeaders } from '../../plugins/jobs/sign.ts';
import { http, until, type ApiResponse, type TestController } from './cluster.ts';

/** Processes of jobs tests log warnings and errors only. */
export const QUIET = { OUTPOST_LOG_LEVEL: 'warn' };

export interface JobsApp {
  appKey: string;
  appName: string;
  secretKey: string;
}

export class JobsClient {
  constructor(
    private readonly c: TestController,
    private readonly listenUrl?: string,
  ) {}

  /** A client of the node:http port the jobs plugin listens on (config `listen`), read from its status. */
  static async onListenPort(c: TestController): Promise<JobsClient> {
    const s = (await c.api('GET', '/api/v1/jobs/status')).body;
    if (!s?.listen) throw new Error(`the jobs plugin has no listen port: ${JSON.stringify(s)}`);
    return new JobsClient(c, `http://127.0.0.1:${s.listen.port}`);
  }

  async createApp(body: { appName: string; linkUrl: string; step?: number; retryTotal?: number }): Promise<JobsApp> {
    const r = await this.c.api('POST', '/application/create', body);
    if (r.body?.code !== 0) throw new Error(`application/create: ${r.text}`);
    return { appKey: r.body.data.appKey, appName: body.appName, secretKey: r.body.data.secretKey };
  }

  headers(app: JobsApp): Record<string, string> {
    const { app_key, ...rest } = signedHeaders(app.appKey, app.appName, app.secretKey);
    return this.listenUrl ? { app_key, ...rest } : { 'app-key': app_key, ...rest };
  }

  signed(app: JobsApp, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = this.headers(app)): Promise<ApiResponse> {
    return http(method, (this.listenUrl ?? this.c.url) + path, { body, headers });
  }

  async createTask(app: JobsApp, body: Record<string, unknown>): Promise<number> {
    const r = await this.signed(app, 'POST', '/task/create', body);
    if (r.body?.code !== 0) throw new Error(`task/create: ${r.text}`);
    return r.body.data.taskId;
  }

  async task(app: JobsApp, id: number): Promise<any> {
    const r = await this.signed(app, 'GET', `/task/detail?id=${id}`);
    if (r.body?.code !== 0) throw new Error(`task/detail: ${r.text}`);
    return r.body.data.task;
  }

  /** Waits until the task's detail satisfies fn (e.g. a status), and answers it. */
  until(app: JobsApp, id: number, what: string, fn: (t: any) => boolean, timeoutMs = 15_000): Promise<any> {
    return until(`task ${id}: ${what}`, async () => {
      const t = await this.task(app, id);
      return fn(t) ? t : undefined;
    }, timeoutMs);
  }
}
