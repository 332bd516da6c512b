import { actionButton, badge, chip, chips, domId, form, html, muted, table, timeAgo, type Html } from '../../plugins/sdk/index.ts';
import type { PublicDelivery } from '../webhooks/outbox.ts';
import type { PublicSubscription } from '../webhooks/subscriptions.ts';
import { scrub } from './scrub.ts';
import { truncate } from './html.ts';
import type { Section, ViewDeps } from './views.ts';

export const DELIVERIES_SHOWN = 8;

function subscriptionRow(s: PublicSubscription) {
  return {
    attrs: { 'data-webhook': s.id },
    cells: [
      html`<code>${s.url}</code>${s.description ? html`<div class="muted small">${s.description}</div>` : ''}`,
      chips(s.events.map((e) => chip(e))),
      actionButton({
        id: domId('webhook-delete', s.id),
        action: `/api/v1/webhooks/${encodeURIComponent(s.id)}`,
        method: 'DELETE',
        label: 'Delete',
        ariaLabel: `Delete webhook to ${s.url}`,
        danger: true,
        confirm: `Delete the webhook to ${s.url}? Its pending deliveries stop.`,
        success: 'Webhook deleted.',
      }),
    ],
  };
}

function deliveryRow(dl: PublicDelivery) {
  const outcome = dl.lastError ? truncate(scrub(dl.lastError), 120) : dl.lastStatus ? `HTTP ${dl.lastStatus}` : muted('—');
  const retry = dl.state === 'dead' ? actionButton({ id: domId('delivery-retry', dl.id), action: `/api/v1/deliveries/${encodeURIComponent(dl.id)}/retry`, label: 'Retry', ariaLabel: `Retry delivery ${dl.id} of ${dl.event}`, success: 'Delivery {delivery.id} is queued again.' }) : '';
  return {
    attrs: { 'data-delivery': dl.id, 'data-state': dl.state },
    cells: [dl.event, html`<code>${dl.url}</code>`, badge(dl.state), { content: dl.attempts, cls: 'num' }, outcome, timeAgo(dl.createdAt), retry],
  };
}

/** Subscribing hands out the signing secret once, in the answer; the list never shows it. */
function addWebhook(d: ViewDeps): Html {
  const events = ['*', ...d.subs.knownEvents()].map((e) => ({ value: e, label: e === '*' ? 'every event (*)' : e }));
  return form({
    id: 'webhook-add',
    action: '/api/v1/webhooks',
    submit: 'Add webhook',
    fields: [
      { name: 'url', label: 'Receiver URL', type: 'url', required: true, placeholder: 'https://hooks.example.net/outpost', maxLength: 2048 },
      { name: 'events', label: 'Events', type: 'checkboxes', options: events, hint: 'None checked means every event.' },
      { name: 'description', label: 'Description (optional)', maxLength: 200 },
    ],
    result: { show: 'once', note: 'Receivers check X-Outpost-Signature with this secret. It is shown only this once: copy it now.', lines: [{ label: 'Signing secret', template: '{secret}' }] },
    success: 'Webhook {id} added: copy its signing secret now, it is shown only once.',
  });
}

function testEvent(): Html {
  return form({
    id: 'webhook-test',
    action: '/api/v1/events/test',
    submit: 'Send test event',
    fields: [{ name: 'message', label: 'Message (optional)', placeholder: 'test event from Outpost', maxLength: 200 }],
    result: { show: 'json' },
    success: 'Test event sent to every webhook that wants test.ping.',
  });
}

/** What the summary and the webhooks section show, read once per render. */
export interface WebhookCounts {
  pending: number;
  dead: number;
}

export function webhooksSection(d: ViewDeps, { pending, dead: deadCount }: WebhookCounts, deliveries: PublicDelivery[]): Section {
  const subs = table({ columns: ['Receiver', 'Events', 'Actions'], rows: d.subs.list().map(subscriptionRow), empty: 'No webhook yet: add one below.' });
  const recent = table({ columns: ['Event', 'Receiver', 'State', 'Attempts', 'Last result', 'Created', 'Actions'], rows: deliveries.map(deliveryRow), empty: 'Nothing delivered yet.' });
  return {
    id: 's-webhooks',
    slot: 'fixed',
    html: html`<h2>Webhooks</h2><p class="counts"><span>${badge('pending')} <strong data-count="pending">${pending}</strong></span> <span>${badge('dead')} <strong data-count="dead">${deadCount}</strong></span></p>
<h3>Subscriptions</h3>${subs}<details id="webhooks-add" class="actions"><summary>Add a webhook</summary>${addWebhook(d)}</details>
<details id="webhooks-test" class="actions"><summary>Send a test event</summary>${testEvent()}</details>
<h3>Latest deliveries</h3>${recent}`.value,
  };
}
