/**
 * The SDK's HTML and panel helpers: everything escaped by construction, markup kept only when it is
 * Html, the attributes the dashboard script acts on, and the shapes the coming plugins need (a small
 * form posting to a route, per-row buttons with confirmation, a button whose JSON answer is shown).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionButton, ago, attrs, badge, chips, chip, domId, esc, form, html, Html, keyValues, raw, table, timeAgo, toneOf, toHtml } from '../plugins/sdk/index.ts';

const XSS = `"><img src=x onerror=alert(1)>'&`;
const XSS_ESCAPED = '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&amp;';

/** Attribute values as a browser reads them back. */
const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

test('esc, html, raw, toHtml: text escaped, Html kept, lists joined, nothing for null', () => {
  assert.equal(esc(XSS), XSS_ESCAPED);
  assert.equal(esc(null), '');
  assert.equal(esc(undefined), '');
  assert.equal(esc(42), '42');
  const inner = html`<b>${XSS}</b>`;
  assert.ok(inner instanceof Html);
  assert.equal(inner.value, `<b>${XSS_ESCAPED}</b>`);
  assert.equal(html`<p>${inner}${[' a', raw('<br>'), 'b<']}${null}${undefined}${3}</p>`.value, `<p><b>${XSS_ESCAPED}</b> a<br>b&lt;3</p>`);
  assert.equal(`${html`<i>${'x'}</i>`}`, '<i>x</i>', 'Html turns into its markup in a string');
  assert.equal(toHtml([raw('<hr>'), XSS]), `<hr>${XSS_ESCAPED}`);
});

test('attrs: values escaped, false and undefined left out, true bare; handlers, style and odd names refused', () => {
  assert.equal(attrs({ id: 'a', title: XSS, hidden: true, checked: false, rowspan: 2, x: undefined }), ` id="a" title="${XSS_ESCAPED}" hidden rowspan="2"`);
  assert.throws(() => attrs({ onclick: 'alert(1)' }), /no event handler or style attribute/);
  assert.throws(() => attrs({ style: 'color:red' }), /no event handler or style attribute/);
  assert.throws(() => attrs({ 'a"b': 'x' }), /invalid HTML attribute name/);
});

test('badge, chip, chips, toneOf: tones from a fixed list, text escaped', () => {
  assert.equal(badge('up').value, '<span class="badge ok">up</span>');
  assert.equal(badge('dead').value, '<span class="badge bad">dead</span>');
  assert.equal(badge('pending').value, '<span class="badge warn">pending</span>');
  assert.equal(badge(XSS).value, `<span class="badge muted">${XSS_ESCAPED}</span>`);
  assert.equal(badge('custom', 'ok').value, '<span class="badge ok">custom</span>');
  assert.equal(toneOf('__proto__'), 'muted', 'an inherited name is no state word');
  assert.equal(toneOf('constructor'), 'muted');
  assert.equal(chip(XSS, 'bad', XSS).value, `<span class="chip bad" title="${XSS_ESCAPED}">${XSS_ESCAPED}</span>`);
  assert.equal(chips([]).value, '<span class="muted">—</span>');
  assert.equal(chips([chip('a'), chip('b')]).value, '<span class="chips"><span class="chip">a</span><span class="chip">b</span></span>');
});

test('table: header, labelled cells, row attributes, spans, escaped content; the empty text instead of no rows', () => {
  assert.equal(table({ columns: ['A'], rows: [], empty: `none ${XSS}` }).value, `<p class="muted empty">none ${XSS_ESCAPED}</p>`);
  const t = table({
    columns: ['Group', { label: 'Count', cls: 'num' }, 'Note'],
    empty: 'none',
    cls: 'nodes',
    rows: [
      { attrs: { 'data-group': XSS }, cells: [{ content: html`<b>g1</b>`, rowspan: 2 }, 3, XSS] },
      { attrs: { 'data-group': 'g1' }, startColumn: 1, cells: [4, { content: null, cls: 'muted' }] },
      { cells: ['g2', { content: 'spans', colspan: 2 }] },
    ],
  }).value;
  assert.ok(t.startsWith('<div class="table-wrap"><table class="nodes"><thead><tr><th scope="col">Group</th><th scope="col" class="num">Count</th><th scope="col">Note</th></tr></thead><tbody>'));
  assert.ok(t.includes(`<tr data-group="${XSS_ESCAPED}"><td data-label="Group" rowspan="2"><b>g1</b></td><td data-label="Count" class="num">3</td><td data-label="Note">${XSS_ESCAPED}</td></tr>`), t);
  assert.ok(t.includes('<tr data-group="g1"><td data-label="Count" class="num">4</td><td data-label="Note" class="muted"></td></tr>'), 'a row under a rowspan labels its cells from the right column');
  assert.ok(t.includes('<tr><td data-label="Group">g2</td><td data-label="Count" class="num" colspan="2">spans</td></tr>'));
  assert.ok(!t.includes('<img'), 'no markup from text');
});

test('keyValues, ago, timeAgo', () => {
  assert.equal(keyValues([['Nodes', 3], [XSS, html`<b>x</b>`]]).value, `<dl class="kv"><div><dt>Nodes</dt><dd>3</dd></div><div><dt>${XSS_ESCAPED}</dt><dd><b>x</b></dd></div></dl>`);
  const now = Date.UTC(2024, 0, 2, 3, 4, 5);
  assert.equal(ago(now - 4_000, now), '4 s ago');
  assert.equal(ago(now - 3 * 60_000, now), '3 min ago');
  assert.equal(ago(now - 5 * 3_600_000, now), '5 h ago');
  assert.equal(ago(now - 2 * 86_400_000, now), '2 d ago');
  assert.equal(ago(null, now), 'never');
  assert.equal(timeAgo(now - 4_000, now).value, '<time datetime="2024-01-02T03:04:01.000Z" title="2024-01-02T03:04:01.000Z">4 s ago</time>');
  assert.equal(timeAgo(undefined, now).value, '<span class="muted">never</span>');
});

test('form: labelled fields of every type, hints tied with aria-describedby, the attributes actions.js reads, no CSRF token in markup', () => {
  const f = form({
    id: 'demo-add',
    action: '/api/v1/demo/items',
    submit: `Add ${XSS}`,
    confirm: `Really? ${XSS}`,
    fields: [
      { name: 'name', label: 'Name', required: true, placeholder: XSS, hint: 'letters only', maxLength: 20 },
      { name: 'count', label: 'Count', type: 'number', min: 1, max: 9, value: 2 },
      { name: 'kind', label: 'Kind', type: 'select', options: ['a', { value: 'b', label: `B ${XSS}` }], value: 'b' },
      { name: 'tags', label: 'Tags', type: 'checkboxes', options: ['x', 'y'], value: ['y'] },
      { name: 'purge', label: 'Delete data too', type: 'checkbox' },
      { name: 'note', label: 'Note', type: 'textarea', value: `</textarea>${XSS}` },
      { name: 'node', type: 'hidden', value: XSS },
    ],
    result: { show: 'once', note: 'Copy it now', lines: [{ label: 'Token', template: 'run --token {token} --at {controller}' }] },
    success: 'Item {id} added',
  }).value;
  assert.match(f, /^<div class="op"><form id="demo-add" class="op-form" method="post" action="\/api\/v1\/demo\/items" data-op data-keep data-method="POST" data-confirm="Really\? &quot;&gt;&lt;img[^"]*" data-result="once" data-once="[^"]+" data-success="Item \{id\} added">/);
  const once = /data-once="([^"]+)"/.exec(f)![1];
  assert.deepEqual(JSON.parse(unescape(once)), { note: 'Copy it now', lines: [{ label: 'Token', template: 'run --token {token} --at {controller}' }] });
  assert.ok(f.includes(`<div class="field"><label for="demo-add-name">Name</label><input id="demo-add-name" name="name" required aria-describedby="demo-add-name-hint" type="text" placeholder="${XSS_ESCAPED}" maxlength="20" spellcheck="false" autocomplete="off"><small id="demo-add-name-hint" class="muted hint">letters only</small></div>`), f);
  assert.ok(f.includes('<input id="demo-add-count" name="count" type="number" value="2" min="1" max="9" autocomplete="off">'));
  assert.ok(f.includes(`<select id="demo-add-kind" name="kind"><option value="a">a</option><option value="b" selected>B ${XSS_ESCAPED}</option></select>`));
  assert.ok(f.includes('<fieldset class="field checks" data-multiple><legend>Tags</legend><label><input type="checkbox" id="demo-add-tags-0" name="tags" value="x"> x</label><label><input type="checkbox" id="demo-add-tags-1" name="tags" value="y" checked> y</label></fieldset>'));
  assert.ok(f.includes('<label><input id="demo-add-purge" name="purge" type="checkbox" value="true"> Delete data too</label>'));
  assert.ok(f.includes(`<textarea id="demo-add-note" name="note" rows="3">&lt;/textarea&gt;${XSS_ESCAPED}</textarea>`));
  assert.ok(f.includes(`<input type="hidden" name="node" value="${XSS_ESCAPED}">`));
  assert.ok(f.includes(`<button type="submit" class="btn primary">Add ${XSS_ESCAPED}</button>`));
  assert.ok(f.endsWith('<div id="demo-add-result" class="op-result" data-keep hidden></div></div>'), 'an empty, hidden result box the script fills');
  assert.ok(!/csrf/i.test(f), 'the host, not the panel, holds the CSRF token');
  assert.ok(!f.includes('<img'));
});

test('form and actionButton refuse what would break the page or leave the controller', () => {
  const base = { id: 'x-y', action: '/api/v1/x', submit: 'Go', fields: [] };
  assert.throws(() => form({ ...base, action: 'https://evil.example/steal' }), /must be a path on this controller/);
  assert.throws(() => form({ ...base, action: '//evil.example/steal' }), /must be a path on this controller/);
  assert.throws(() => form({ ...base, id: 'has space' }), /action id/);
  assert.throws(() => form({ ...base, fields: [{ name: 'a', label: 'A' }, { name: 'a', label: 'A again' }] }), /field "a" appears twice/);
  assert.throws(() => form({ ...base, fields: [{ name: 'a' }] }), /field "a" needs a label/);
  assert.throws(() => form({ ...base, fields: [{ name: 'a b', label: 'A' }] }), /field name/);
  assert.throws(() => actionButton({ id: 'x', action: 'javascript:alert(1)', label: 'Go' }), /must be a path on this controller/);
});

test('domId: stable, safe, and distinct for keys that differ only in unsafe characters', () => {
  const a = domId('job-cancel', 'app:1/2');
  assert.equal(a, domId('job-cancel', 'app:1/2'));
  assert.match(a, /^job-cancel-app_1_2-[0-9a-f]{8}$/);
  assert.notEqual(a, domId('job-cancel', 'app_1_2'));
  assert.match(domId('n', XSS), /^n-[A-Za-z0-9_-]+$/);
});

test('the shapes the next plugins need: push a test message, cancel / re-run a task per row, re-sync showing the JSON answer', () => {
  const push = form({ id: 'comet-push', action: '/goim/push/keys', submit: 'Push test message', fields: [{ name: 'keys', label: 'Keys', required: true }, { name: 'message', label: 'Message', type: 'textarea', maxLength: 4096 }], result: { show: 'json' } }).value;
  assert.match(push, /<form id="comet-push" class="op-form" method="post" action="\/goim\/push\/keys" data-op data-keep data-method="POST" data-result="json">/);
  assert.match(push, /<textarea id="comet-push-message" name="message" rows="3" maxlength="4096"><\/textarea>/);

  const taskId = 'task:42';
  const cancel = actionButton({ id: domId('jobs-cancel', taskId), action: '/task/cancel', fields: { taskId }, label: 'Cancel', ariaLabel: `Cancel task ${taskId}`, danger: true, confirm: `Cancel task ${taskId}?`, success: 'Task cancelled.' }).value;
  assert.match(cancel, /^<div class="op op-inline"><form id="jobs-cancel-task_42-[0-9a-f]{8}" class="op-button" method="post" action="\/task\/cancel" data-op data-keep data-method="POST" data-confirm="Cancel task task:42\?" data-result="message" data-success="Task cancelled.">/);
  assert.ok(cancel.includes('<input type="hidden" name="taskId" value="task:42"><button type="submit" class="btn small danger" aria-label="Cancel task task:42">Cancel</button></form>'));
  const rerun = actionButton({ id: domId('jobs-rerun', taskId), action: `/api/v1/jobs/tasks/${encodeURIComponent(taskId)}/rerun`, method: 'PUT', label: 'Re-run', result: { show: 'json' } }).value;
  assert.match(rerun, /action="\/api\/v1\/jobs\/tasks\/task%3A42\/rerun" data-op data-keep data-method="PUT" data-result="json"/);
  assert.ok(rerun.includes('<button type="submit" class="btn small">Re-run</button>'));

  const resync = actionButton({ id: 'dns-sync-resync', action: '/api/v1/dns-sync/resync', label: 'Re-sync DNS now', confirm: 'Write every record again?', result: { show: 'json' } }).value;
  assert.match(resync, /data-confirm="Write every record again\?" data-result="json"/);
  assert.ok(resync.endsWith('<div id="dns-sync-resync-result" class="op-result" data-keep hidden></div></div>'));
});
