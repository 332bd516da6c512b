import { checkId, HttpError, str, websoft9Error, websoft9Ok, type ControllerContext, type HttpRequest, type HttpResult, type Route } from '../sdk/index.ts';
import type { Sample } from './schema.ts';
import type { Spec } from './spec.ts';

const percent = (n: number | undefined) => (n === undefined ? '' : `${Math.round(n)}%`);

export function searchServerRoutes(ctx: ControllerContext<Spec>, latest: (id: string) => Sample | undefined): Route[] {
  const handler = (req: HttpRequest): HttpResult => {
    const ref = str(req.fields, 'node');
    const node = ref ? ctx.nodes.resolve(checkId(ref, 'node')) : ctx.nodes.defaultNode();
    if (!node) throw new HttpError(400, ref ? `unknown node "${ref}"` : 'several nodes are enrolled: name one with the "node" parameter');
    const s = latest(node.id);
    if (!s) throw new HttpError(404, `node ${node.name} has not reported stats yet`);
    return websoft9Ok('服务器状态信息查询成功', {
      cpu: percent(s.cpu.percent),
      memory: percent(s.memory.percent),
      hdd: percent(s.disk?.percent),
      info: node.state === 'up' ? '' : `node is ${node.state}; figures are from ${new Date(s.ts).toISOString()}`,
      node: node.name,
      node_id: node.id,
      state: node.state,
      sampled_at: new Date(s.ts).toISOString(),
      cpu_percent: s.cpu.percent,
      cpu_cores: s.cpu.cores,
      memory_percent: s.memory.percent,
      memory_total: s.memory.total,
      memory_used: s.memory.used,
      hdd_percent: s.disk?.percent ?? null,
      hdd_total: s.disk?.total ?? null,
      hdd_used: s.disk?.used ?? null,
      load: s.load,
      network: s.network,
      uptime: s.uptime,
      containers: s.containers ?? null,
    });
  };
  return [{ method: ['GET', 'POST'], path: '/searchServer', auth: ctx.config.open ? 'none' : 'admin', error: websoft9Error, handler }];
}
