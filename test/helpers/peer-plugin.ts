/**
 * A plugin for tests of calls between controllers (test/peers-single.test.ts, the e2e
 * controllers-forward): written against plugins/sdk alone, loaded from a pluginDirs folder by
 * controllers and agents. Its routes drive ctx.command, ctx.send/broadcast, ctx.nodes.require and
 * ctx.peers from one controller and show what arrived.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, tempDir } from './cluster.ts';

const SDK = join(ROOT, 'plugins/sdk/index.ts');

export const PEER_PLUGIN = 'zz-fwd';

const files: Record<string, string> = {
  'spec.ts': `
import { defineSpec, z } from '${SDK}';
export const spec = defineSpec({
  name: 'zz-fwd',
  config: z.object({}).default({}),
  commands: {
    echo: { args: z.object({ text: z.string(), delayMs: z.number().int().min(0).default(0), fail: z.boolean().default(false) }), result: z.object({ text: z.string(), node: z.string() }) },
  },
  messages: {
    toAgent: { ping: z.object({ seq: z.number(), body: z.instanceof(Buffer) }) },
    toController: { pong: z.object({ seq: z.number(), body: z.instanceof(Buffer) }) },
  },
});
`,
  'index.ts': `
import { definePlugin } from '${SDK}';
import { spec } from './spec.ts';
export default definePlugin(spec, { agent: () => import('./agent.ts'), controller: () => import('./controller.ts') });
`,
  'agent.ts': `
import { defineAgent } from '${SDK}';
import { spec } from './spec.ts';
export default defineAgent(spec, (ctx) => ({
  commands: {
    async echo(a) {
      if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
      if (a.fail) throw new Error('refused on purpose by ' + ctx.node.name);
      return { text: a.text, node: ctx.node.name };
    },
  },
  onMessage: { ping: (m) => void ctx.send('pong', m) },
}));
`,
  'controller.ts': `
import { defineController, restError, HttpError } from '${SDK}';
import { spec } from './spec.ts';
export default defineController(spec, (ctx) => {
  // Pongs by node: seq and whether the bytes are the ones sent (each byte = seq % 256).
  const got: Record<string, Array<{ seq: number; same: boolean }>> = {};
  const route = (method, path, handler) => ({ method, path, auth: 'admin', error: restError, handler });
  const outcome = async (fn) => {
    try {
      return { json: { ok: true, result: await fn() } };
    } catch (err) {
      return { json: { ok: false, error: err.message, status: typeof err.status === 'number' ? err.status : null } };
    }
  };
  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return {
    start() {
      ctx.routes.mount([
        route('GET', '/api/v1/zz-fwd/state', () => ({ json: { self: ctx.peers.self, got, nodes: ctx.nodes.list() } })),
        // One command through ctx.nodes.require (plugin default: this one) then ctx.command.
        route('POST', '/api/v1/zz-fwd/one', (req) => outcome(() => {
          const node = ctx.nodes.require(req.fields.node, req.fields.plugin);
          return ctx.command(node.id, 'echo', { text: String(req.fields.text ?? 'hi'), delayMs: Number(req.fields.delayMs ?? 0), fail: req.fields.fail === true }, req.fields.timeoutMs ? { timeoutMs: Number(req.fields.timeoutMs) } : undefined);
        })),
        // n sequential commands, timed here: the forwarding's own cost, without the REST round trip.
        route('POST', '/api/v1/zz-fwd/bench', async (req) => {
          const node = ctx.nodes.require(req.fields.node);
          // Failed commands are counted, not thrown: a loaded bench run still reports what answered.
          const ms = [];
          let failed = 0;
          let error;
          for (let i = 0; i < Number(req.fields.n ?? 100); i++) {
            const t = performance.now();
            try {
              const r = await ctx.command(node.id, 'echo', { text: 't' + i });
              if (r.text !== 't' + i) throw new HttpError(500, 'wrong answer to command ' + i);
              ms.push(performance.now() - t);
            } catch (err) {
              failed++;
              error ??= err.message;
            }
          }
          ms.sort((a, b) => a - b);
          return { json: { n: ms.length, failed, ...(error ? { error } : {}), p50: pct(ms, 50), p99: pct(ms, 99), max: ms[ms.length - 1] ?? 0 } };
        }),
        route('POST', '/api/v1/zz-fwd/send', (req) => {
          const nodes = req.fields.nodes;
          let took = 0;
          for (let seq = 0; seq < Number(req.fields.count ?? 1); seq++) {
            const msg = { seq, body: Buffer.alloc(Number(req.fields.size ?? 16), seq % 256) };
            took += nodes === 'all' || Array.isArray(nodes) ? ctx.broadcast(nodes, 'ping', msg) : ctx.send(String(nodes), 'ping', msg) ? 1 : 0;
          }
          return { json: { took } };
        }),
        route('POST', '/api/v1/zz-fwd/peers', async (req) => {
          const body = { text: String(req.fields.text ?? ''), bytes: Buffer.from(String(req.fields.text ?? ''), 'utf8') };
          const method = String(req.fields.method ?? 'whoami');
          const list = ctx.peers.list();
          const call = req.fields.to ? await outcome(() => ctx.peers.call(String(req.fields.to), method, body)) : null;
          const all = await ctx.peers.broadcast(method, body);
          const show = (r) => (r && typeof r === 'object' && Buffer.isBuffer(r.bytes) ? { ...r, bytes: r.bytes.toString('utf8'), buffer: true } : r);
          return { json: { self: ctx.peers.self, list, call: call && { ...call.json, result: show(call.json.result) }, broadcast: all.map((a) => (a.ok ? { ...a, result: show(a.result) } : a)) } };
        }),
      ]);
    },
    onMessage: { pong: (node, m) => void (got[node] ??= []).push({ seq: m.seq, same: m.body.every((b) => b === m.seq % 256) }) },
    onPeer: {
      whoami: (body, from) => ({ self: ctx.peers.self, from, text: body.text, bytes: Buffer.isBuffer(body.bytes) ? Buffer.concat([body.bytes, Buffer.from('!')]) : null }),
      fail: () => {
        throw new Error('no, on purpose');
      },
    },
  };
});
`,
};

/** Writes the plugin into a fresh folder; returns the folder to name in pluginDirs. */
export async function writePeerPlugin(): Promise<string> {
  const dir = await tempDir('outpost-peer-plugin-');
  await mkdir(join(dir, PEER_PLUGIN));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, PEER_PLUGIN, name), text);
  return dir;
}
