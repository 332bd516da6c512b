import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applicationView, newApplication } from '../plugins/jobs/application.ts';
import { jobsConfig } from '../plugins/jobs/config.ts';
import { JobsError, jobsError, ok } from '../plugins/jobs/envelope.ts';
import { serendipitySignature } from '../plugins/jobs/sign.ts';
import { parseAppCreate, parseCancel, parseDetailQuery, parsePublish, parseTaskCreate } from '../plugins/jobs/validate.ts';

const NOW = Date.UTC(2024, 0, 1, 0, 0, 0);
const opts = { timezone: 'Asia/Shanghai', now: NOW };
const body = (o: unknown) => JSON.stringify(o);

/** Asserts fn throws a JobsError whose message matches every pattern. */
function refuses(fn: () => unknown, ...patterns: RegExp[]) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof JobsError, `not a JobsError: ${err}`);
    for (const p of patterns) assert.match(err.message, p);
    return;
  }
  assert.fail('accepted');
}

test('envelopes: success, failure with data [] and HTTP statuses', () => {
  assert.deepEqual(ok({ taskId: 1 }, 'ok!'), { status: 200, json: { code: 0, msg: 'ok!', data: { taskId: 1 } } });
  assert.deepEqual(jobsError(400, 'step: bad'), { status: 200, json: { code: 1, msg: 'step: bad', data: [] } });
  assert.equal(jobsError(401, 'x').status, 401);
  assert.equal(jobsError(403, 'x').status, 401);
  assert.equal(jobsError(429, 'x').status, 429);
  assert.equal(jobsError(413, 'x').status, 200);
  assert.equal(jobsError(500, 'x').status, 500);
});

test('application/create: the document example passes, defaults step 0 and retryTotal 5', () => {
  assert.deepEqual(parseAppCreate(body({ appName: '帅的批爆1', step: 10, retryTotal: 0, linkUrl: 'http://127.0.0.1', remark: '呵呵' })), { appName: '帅的批爆1', step: 10, retryTotal: 0, linkUrl: 'http://127.0.0.1', remark: '呵呵' });
  assert.deepEqual(parseAppCreate(body({ appName: 'a', linkUrl: 'https://x.test/cb', step: null })), { appName: 'a', linkUrl: 'https://x.test/cb', step: 0, retryTotal: 5, remark: '' });
  // Digit strings are the integers they spell (the original cast with (int)).
  assert.equal(parseAppCreate(body({ appName: 'a', linkUrl: 'http://h', step: '3600', retryTotal: '10' })).step, 3600);
});

test('application/create: every rule refuses with code 1 naming the field', () => {
  const base = { appName: 'a', linkUrl: 'http://h/' };
  refuses(() => parseAppCreate(body({})), /appName: required/, /linkUrl: required/);
  refuses(() => parseAppCreate(body({ ...base, appName: '' })), /appName: must be a string of 1 to 100 characters/);
  refuses(() => parseAppCreate(body({ ...base, appName: '   ' })), /appName/);
  refuses(() => parseAppCreate(body({ ...base, appName: 'x'.repeat(101) })), /appName/);
  assert.equal(parseAppCreate(body({ ...base, appName: '字'.repeat(100) })).appName.length, 100, '100 characters, not bytes');
  refuses(() => parseAppCreate(body({ ...base, appName: 7 })), /appName: must be a string/);
  refuses(() => parseAppCreate(body({ ...base, linkUrl: 'ftp://h/' })), /linkUrl: must be an http:\/\/ or https:\/\/ URL of at most 200 characters/);
  refuses(() => parseAppCreate(body({ ...base, linkUrl: 'not a url' })), /linkUrl/);
  refuses(() => parseAppCreate(body({ ...base, linkUrl: `http://h/${'p'.repeat(192)}` })), /linkUrl/);
  assert.equal(parseAppCreate(body({ ...base, linkUrl: `http://h/${'p'.repeat(191)}` })).linkUrl.length, 200);
  for (const step of [-1, 3601, 1.5, '1.5', 'ten', true, [], '010'])
    refuses(() => parseAppCreate(body({ ...base, step })), /^step: must be an integer from 0 to 3600$/);
  for (const retryTotal of [-1, 11, 'x']) refuses(() => parseAppCreate(body({ ...base, retryTotal })), /^retryTotal: must be an integer from 0 to 10$/);
  refuses(() => parseAppCreate(body({ ...base, remark: { a: 1 } })), /remark: must be a string of at most 255 characters/);
  refuses(() => parseAppCreate('{"appName":'), /^malformed JSON body: /);
  refuses(() => parseAppCreate('[1,2]'), /body must be a JSON object/);
  refuses(() => parseAppCreate(Buffer.from('"text"')), /body must be a JSON object/);
});

test('application/create: names are unique; the answer is a usable signed header set plus the secret', () => {
  const { app, answer } = newApplication(parseAppCreate(body({ appName: '帅的批爆', linkUrl: 'http://127.0.0.1/cb', step: 5 })), [], NOW);
  assert.match(app.appKey, /^[A-Za-z0-9]{16}$/);
  assert.match(app.secretKey.reveal(), /^[A-Za-z0-9]{32}$/);
  assert.equal(JSON.stringify(app).includes(app.secretKey.reveal()), false, 'the record shows the secret as ***');
  assert.deepEqual(Object.keys(answer).sort(), ['appKey', 'nonce', 'payload', 'secretKey', 'signature', 'timestamps']);
  assert.equal(answer.payload, 'f3c5fa5b2b4045bcb1132ddece49c0f4');
  assert.equal(answer.timestamps, String(NOW / 1000));
  assert.equal(answer.signature, serendipitySignature(answer.timestamps, answer.nonce, answer.payload, app.secretKey.reveal()));
  assert.equal(app.step, 5);
  assert.equal(app.retryTotal, 5);
  assert.equal('secretKey' in applicationView(app), false);
  refuses(() => newApplication(parseAppCreate(body({ appName: '帅的批爆', linkUrl: 'http://h/' })), [app]), /appName: "帅的批爆" is already taken/);
});

test('task/create: the document example passes; content is kept byte for byte', () => {
  const raw = '{"taskNo":"taskNo82","content":{"class":"\\\\Serendipity\\\\Job\\\\Job\\\\SimpleJob","_params":{"startDate":"2021-07-27 17:50:50"},"big":12345678901234567890},"timeout":60000,"name":"name","runtime":"2024-01-01 12:00:00"}';
  const t = parseTaskCreate(raw, opts);
  assert.equal(t.taskNo, 'taskNo82');
  assert.equal(t.content, '{"class":"\\\\Serendipity\\\\Job\\\\Job\\\\SimpleJob","_params":{"startDate":"2021-07-27 17:50:50"},"big":12345678901234567890}');
  assert.equal(t.timeout, 60000);
  assert.equal(t.name, 'name');
  assert.equal(t.runtime, Date.UTC(2024, 0, 1, 4, 0, 0));
  assert.equal(t.runAt, t.runtime);
});

test('task/create: defaults (UUID taskNo, 60 s timeout, runtime now), past runtime runs now, any JSON content', () => {
  const t = parseTaskCreate(body({ content: 'a JSON string' }), opts);
  assert.match(t.taskNo, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(t.timeout, 60_000);
  assert.equal(t.name, '');
  assert.equal(t.runAt, NOW);
  assert.equal(t.content, '"a JSON string"');
  const past = parseTaskCreate(body({ content: [1], runtime: '2020-01-01 00:00:00' }), opts);
  assert.equal(past.runAt, NOW);
  assert.equal(past.runtime, Date.UTC(2019, 11, 31, 16));
  for (const content of [null, 0, false, [], {}]) assert.equal(parseTaskCreate(body({ content }), opts).content, JSON.stringify(content));
  assert.equal(parseTaskCreate(body({ content: 1, taskNo: 42 }), opts).taskNo, '42');
  assert.equal(parseTaskCreate(body({ content: 1, runtime: '@1704067260' }), opts).runAt, NOW + 60_000);
  assert.equal(parseTaskCreate(body({ content: 1, timeout: 3_600_000 }), opts).timeout, 3_600_000);
});

test('task/create: every rule refuses naming the field', () => {
  refuses(() => parseTaskCreate('{}', opts), /^content: required/);
  refuses(() => parseTaskCreate('', opts), /content: required/);
  for (const timeout of [0, -5, 3_600_001, 1.5, 'soon']) refuses(() => parseTaskCreate(body({ content: 1, timeout }), opts), /^timeout: must be an integer from 1 to 3600000$/);
  refuses(() => parseTaskCreate(body({ content: 1, taskNo: '' }), opts), /taskNo: must be a string of 1 to 128 characters/);
  refuses(() => parseTaskCreate(body({ content: 1, taskNo: { a: 1 } }), opts), /taskNo/);
  refuses(() => parseTaskCreate(body({ content: 1, name: 5 }), opts), /^name: must be a string/);
  refuses(() => parseTaskCreate(body({ content: 1, runtime: 'next week' }), opts), /^runtime: "next week" is not/);
  refuses(() => parseTaskCreate(body({ content: 1, runtime: [2024] }), opts), /^runtime: must be a string/);
  refuses(() => parseTaskCreate('{"content": 1,}', opts), /^malformed JSON body/);
});

test('detail, cancel and publish name their id field', () => {
  assert.deepEqual(parseDetailQuery({ id: ['18'], coroutine_id: ['6'], service_id: ['consul-1'] }), { id: 18 });
  refuses(() => parseDetailQuery({ coroutine_id: ['6'] }), /^id: required/);
  refuses(() => parseDetailQuery({ id: ['abc'] }), /^id: must be an integer/);
  assert.deepEqual(parseCancel(body({ coroutine_id: 6, id: 18 })), { id: 18 });
  refuses(() => parseCancel(body({ id: 0 })), /^id: must be an integer from 1/);
  refuses(() => parseCancel(body({})), /^id: required/);
  assert.deepEqual(parsePublish(body({ task_id: 1 })), { taskId: 1 });
  refuses(() => parsePublish(body({ id: 1 })), /^task_id: required/);
  refuses(() => parsePublish(body({ task_id: 'one' })), /^task_id: must be an integer/);
});

test('config: defaults, and bad values name their field', () => {
  const c = jobsConfig.parse({});
  assert.equal(c.timezone, 'Asia/Shanghai');
  assert.equal(c.windowSec, 300);
  assert.equal(c.concurrencyPerNode, 64);
  assert.deepEqual(c.labels, {});
  const r = jobsConfig.safeParse({ timezone: 'Mars/Olympus', windowSec: 0, labels: { region: 1 }, open: true });
  assert.equal(r.success, false);
  const paths = r.error!.issues.map((i) => i.path.join('.') || i.message);
  assert.ok(paths.includes('timezone') && paths.includes('windowSec') && paths.includes('labels.region'), paths.join());
  assert.match(JSON.stringify(r.error!.issues), /open/, 'unknown keys (an `open` switch) are refused');
});
