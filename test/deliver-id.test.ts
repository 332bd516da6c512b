/**
 * DeliverOptions.id through a plugin's context: the id is namespaced by plugin (two plugins' ids never
 * name one delivery), and the same id twice is one delivery. The outbox's side (an id it holds,
 * delivered or gave up on is not queued again, also after a restart) is in test/webhooks.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineController, definePlugin, defineSpec, restError, z } from '../plugins/sdk/index.ts';
import { testPlugin } from '../plugins/sdk/testing/index.ts';

const spec = defineSpec({ name: 'zz-sender', config: z.object({}) });
const plugin = definePlugin(spec, {
  controller: async () => ({
    default: defineController(spec, (ctx) => ({
      start() {
        ctx.routes.mount([
          {
            method: 'POST',
            path: '/api/v1/zz-sender/send',
            auth: 'admin',
            error: restError,
            handler: async (req) => ({ json: { id: await ctx.webhooks.deliver('http://127.0.0.1:9/hook', JSON.stringify({ task: req.fields.task }), req.fields.task ? { id: `task-${req.fields.task}` } : {}) } }),
          },
        ]);
      },
    })),
  }),
});

test('a plugin\'s delivery id is <plugin>:<id>; the same id twice is one delivery, no id is a new one each time', async () => {
  const h = await testPlugin({ plugin, config: {}, halves: ['controller'] });
  try {
    const send = async (task?: string) => (await h.inject({ method: 'POST', url: '/api/v1/zz-sender/send', body: task ? { task } : {} })).json.id;
    assert.equal(await send('7'), 'zz-sender:task-7');
    assert.equal(await send('7'), 'zz-sender:task-7', 'a retry of the same task names the same delivery');
    const a = await send();
    const b = await send();
    assert.notEqual(a, b);
    assert.deepEqual(h.webhooks.map((w) => w.id), ['zz-sender:task-7', a, b]);
  } finally {
    await h.close();
  }
});
