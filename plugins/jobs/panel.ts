import { actionButton, badge, form, html, keyValues, muted, table, timeAgo, toneOf, type DashboardPanel, type Html, type Row } from '../sdk/index.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { Jobs } from './jobs.ts';
import { STATUS, STATUS_NAME, type Status, type Task } from './task.ts';

const RECENT = 50;

function createApp(): Html {
  return form({
    id: 'jobs-create-app',
    action: '/api/v1/jobs/apps',
    submit: 'Create application',
    fields: [
      { name: 'appName', label: 'Name', required: true, maxLength: 100 },
      { name: 'linkUrl', label: 'Callback URL', type: 'url', required: true, placeholder: 'https://app.example.net/jobs/callback', hint: 'tasks are POSTed here as {"data": content}' },
      { name: 'step', label: 'Seconds between attempts', type: 'number', min: 0, max: 3600, value: 0 },
      { name: 'retryTotal', label: 'Retries after the first attempt', type: 'number', min: 0, max: 10, value: 5 },
      { name: 'remark', label: 'Remark', maxLength: 255 },
    ],
    result: {
      show: 'once',
      note: 'Keep the secret now: it signs every request and every callback, and is never shown again.',
      lines: [
        { label: 'app_key', template: '{app.appKey}' },
        { label: 'secretKey', template: '{secretKey}' },
      ],
    },
    success: 'Application {app.appName} created.',
  });
}

function taskAction(t: Task): Html | string {
  if (t.status === STATUS.pending || t.status === STATUS.running) {
    return actionButton({
      id: `jobs-cancel-${t.id}`,
      action: `/api/v1/jobs/tasks/${t.id}/cancel`,
      label: 'Cancel',
      ariaLabel: `Cancel task ${t.id}`,
      danger: true,
      confirm: `Cancel task ${t.id}${t.status === STATUS.running ? ' (its callback in flight is aborted)' : ''}?`,
      success: `Task ${t.id} cancelled.`,
    });
  }
  return actionButton({
    id: `jobs-rerun-${t.id}`,
    action: `/api/v1/jobs/tasks/${t.id}/rerun`,
    label: 'Re-run',
    ariaLabel: `Re-run task ${t.id}`,
    confirm: `Run task ${t.id} again (at its runtime, now if that is past)?`,
    success: `Task ${t.id} queued again.`,
  });
}

/** Applications (never their secret), the latest tasks with their attempts, cancel and re-run. */
export function jobsPanel(j: Jobs, d: Dispatcher): DashboardPanel {
  return {
    title: 'Jobs',
    render() {
      const now = Date.now();
      const counts = (Object.entries(j.book.counts) as Array<[string, number]>).map(([s, n]) => {
        const name = STATUS_NAME[Number(s) as Status];
        return html`${badge(`${name} ${n}`, toneOf(name))} `;
      });
      const load = [...d.load()].map(([id, n]) => `${j.nodeName(id)}: ${n}`).join(', ');
      const summary = keyValues([
        ['Tasks', counts],
        ['In flight', load || muted('none')],
        ['Due tasks wait', d.waiting ? badge(d.waiting, 'warn') : muted('no')],
      ]);
      const apps = table({
        columns: ['Application', 'app_key', 'Callback URL', 'Step (s)', 'Retries', 'Remark', 'Created'],
        rows: j.apps.list().map((a): Row => ({ attrs: { 'data-app': a.appKey }, cells: [a.appName, html`<code>${a.appKey}</code>`, a.linkUrl, a.step, a.retryTotal, a.remark || muted('—'), timeAgo(a.createdAt, now)] })),
        empty: 'No application yet.',
      });
      const tasks = table({
        columns: ['Task', 'Application', 'taskNo / name', 'State', 'Runtime', 'Attempts', 'Next', 'Action'],
        rows: j.book.recent(RECENT).map((t): Row => {
          const v = j.view(t);
          const attempts = v.attempts.map((a, i) => html`${i ? html`<br>` : ''}#${a.n} ${a.node}: ${a.elapsedMs === null ? 'in flight' : (a.error ?? `${a.statusCode} in ${a.elapsedMs} ms`)}`);
          const next = v.waiting ? badge(`waiting: ${v.waiting}`, 'warn') : (v.nextRunAt ?? (v.error ? v.error : muted('—')));
          return {
            attrs: { 'data-task': t.id, 'data-status': t.status },
            cells: [t.id, j.apps.get(t.appKey)?.appName ?? t.appKey, html`${t.taskNo}${t.name ? html`<br><small>${t.name}</small>` : ''}`, badge(STATUS_NAME[t.status]), v.runtime, attempts.length ? attempts : muted('none yet'), next, taskAction(t)],
          };
        }),
        empty: 'No task yet.',
      });
      return html`${summary}<h3>Applications</h3>${apps}<details id="jobs-add" class="actions"><summary>Create an application</summary>${createApp()}</details><h3>Recent tasks</h3>${tasks}`;
    },
  };
}
