/**
 * Outpost's side: a real controller and one agent running the jobs plugin (through the CLI, as the
 * tests start them), an application created with the admin token, and every task created through the
 * signed Serendipity API (POST /task/create with fresh headers per request, as a client would, on the
 * controller's port: `app-key`, the header name its server accepts). Durability as shipped: tasks,
 * nonces and the due-time queue on the SDK's logs with fsync `interval` (Redis' AOF everysec is the
 * same kind), every create acknowledged only once on disk.
 */
import { TestAgent, TestController, http } from '../../../test/helpers/cluster.ts';
import { signedHeaders } from '../../../plugins/jobs/sign.ts';
import { SideUnavailable, withClients, type BenchJob, type JobsSide, type SideOptions } from './jobs-side.ts';

const quiet = { OUTPOST_LOG_LEVEL: 'error' };

export class OutpostSide implements JobsSide {
  readonly name = 'Outpost (controller + 1 agent)';
  private controller: TestController | undefined;
  private agent: TestAgent | undefined;
  private app: { appKey: string; appName: string; secretKey: string } | undefined;

  constructor(private readonly opts: SideOptions) {}

  async start(): Promise<Record<string, number>> {
    try {
      this.controller = await TestController.start({ config: { plugins: { jobs: { concurrencyPerNode: this.opts.concurrency } } }, env: quiet });
      this.agent = await TestAgent.start(this.controller, { name: 'bench-jobs', plugins: { jobs: {} }, env: quiet });
    } catch (err) {
      throw new SideUnavailable(`the controller or agent did not start with the jobs plugin: ${(err as Error).message.split('\n')[0]}`);
    }
    const appName = `bench-${Date.now()}`;
    const r = await this.controller.api('POST', '/application/create', { appName, linkUrl: this.opts.receiverUrl, step: 0, retryTotal: 5 });
    if (r.status !== 200 || r.body?.code !== 0) throw new SideUnavailable(`POST /application/create answered HTTP ${r.status} ${r.text.slice(0, 160)}: the jobs plugin is not wired into this build`);
    this.app = { appKey: r.body.data.appKey, appName, secretKey: r.body.data.secretKey };
    return { controller: this.controller.proc.child.pid!, agent: this.agent.proc.child.pid! };
  }

  async create(jobs: BenchJob[]): Promise<void> {
    const { appKey, appName, secretKey } = this.app!;
    const url = `${this.controller!.url}/task/create`;
    await withClients(jobs, this.opts.clients, async (j) => {
      const body = { taskNo: `bench-${j.i}`, content: { i: j.i, due: j.due }, timeout: 60_000, runtime: new Date(j.due).toISOString() };
      const { app_key, ...rest } = signedHeaders(appKey, appName, secretKey);
      const r = await http('POST', url, { body, headers: { 'app-key': app_key, ...rest } });
      if (r.body?.code !== 0) throw new Error(`task/create ${j.i}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    });
  }

  async stop(): Promise<void> {
    await this.agent?.stop();
    await this.controller?.stop();
  }
}
