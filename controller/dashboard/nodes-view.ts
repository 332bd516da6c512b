import { actionButton, attrs, badge, chip, chips, domId, form, html, muted, raw, table, timeAgo, type Html } from '../../plugins/sdk/index.ts';
import type { Capabilities } from '../../plugins/sdk/capabilities.ts';
import { scrub } from './scrub.ts';
import { truncate } from './html.ts';
import type { Section, ViewDeps } from './views.ts';

function pluginChip(p: { name: string; state: string; error?: string }): Html {
  const tone = p.state === 'running' ? 'ok' : p.state === 'failed' ? 'bad' : 'muted';
  return chip(p.state === 'running' ? p.name : `${p.name} · ${p.state}`, tone, p.error ? truncate(scrub(p.error), 300) : undefined);
}

/**
 * What the node's host lacks (icmp without ping, no Docker Engine), the reason on hover: plugins
 * needing it answer errors there. Muted, not a warning: most nodes need only some of them.
 */
function missingCapabilities(caps: Capabilities | undefined): Html[] {
  return Object.entries(caps ?? {})
    .filter(([, c]) => !c.available)
    .map(([name, c]) => raw(`<span${attrs({ class: 'chip muted', 'data-capability': name, title: truncate(c.reason ?? '', 300) })}>${html`${name}: no`.value}</span>`));
}

function deleteNode(n: { id: string; name: string }): Html {
  return actionButton({
    id: domId('node-delete', n.id),
    action: `/api/v1/nodes/${encodeURIComponent(n.id)}`,
    method: 'DELETE',
    label: 'Delete',
    ariaLabel: `Delete node ${n.name}`,
    danger: true,
    confirm: `Delete node ${n.name}? Its credential is revoked and its link closed; to bring it back, join it again with a new token.`,
    success: `Node ${n.name} deleted.`,
  });
}

/**
 * Join tokens are created here, never listed with their secret: the install lines are filled in the
 * browser from the one answer that carries the token, and are gone on reload.
 */
function addNode(d: ViewDeps, now: number, open: boolean): Html {
  const create = form({
    id: 'node-join-token',
    action: '/api/v1/tokens',
    submit: 'Create join token',
    fields: [
      { name: 'ttl', label: 'Valid for', type: 'select', value: '24h', options: [{ value: '1h', label: '1 hour' }, { value: '24h', label: '24 hours' }, { value: '7d', label: '7 days' }] },
      { name: 'uses', label: 'Nodes it may enroll', type: 'number', value: 1, min: 1, max: 100_000, required: true },
      { name: 'labels', label: 'Labels (optional)', placeholder: 'region=eu-west,isp=CT', hint: 'k=v pairs separated by commas, given to every node that joins with this token', maxLength: 1000 },
    ],
    result: {
      show: 'once',
      note: 'Run one of these on the new node. The token is shown only this once: copy it now.',
      lines: [
        { label: 'Install as a service (Debian or Ubuntu, from a copy of this repository)', template: 'sudo scripts/install-agent.sh --controller {controller} --token {token}' },
        { label: 'Or join from a checkout (npm install done), then run npx outpost agent --config configs/agent.json', template: 'npx outpost agent join --controller {controller} --token {token} --config configs/agent.json' },
      ],
    },
    success: 'Join token {id} created: copy the install line now, it is shown only once.',
  });
  const tokens = d.tokens
    .list()
    .filter((t) => t.state === 'active')
    .sort((a, b) => b.createdAt - a.createdAt)
    .map((t) => ({
      attrs: { 'data-token': t.id },
      cells: [
        html`<code>${t.id}</code>`,
        t.usesLeft,
        timeAgo(t.createdAt, now),
        html`<time datetime="${new Date(t.expiresAt).toISOString()}">${new Date(t.expiresAt).toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`,
        chips(Object.entries(t.labels).map(([k, v]) => chip(`${k}=${v}`))),
        actionButton({ id: domId('token-revoke', t.id), action: `/api/v1/tokens/${encodeURIComponent(t.id)}`, method: 'DELETE', label: 'Revoke', ariaLabel: `Revoke join token ${t.id}`, danger: true, confirm: `Revoke join token ${t.id}? Nodes can no longer join with it.`, success: `Join token ${t.id} revoked.` }),
      ],
    }));
  const list = table({ columns: ['Token', 'Uses left', 'Created', 'Expires', 'Labels', 'Actions'], rows: tokens, empty: 'No active join token.' });
  return html`<details id="nodes-add" class="actions"${open ? html` open` : ''}><summary>Add a node</summary>${create}<h3>Active join tokens</h3>${list}</details>`;
}

export function nodesSection(d: ViewDeps, now: number): Section {
  const nodes = d.registry.list().sort((a, b) => a.name.localeCompare(b.name));
  const rows = nodes.map((n) => {
    const labels = Object.entries(n.labels ?? {}).map(([k, v]) => chip(`${k}=${v}`));
    const lacks = missingCapabilities(n.capabilities);
    const agent = [n.version ? `v${n.version}` : '', n.connected ? 'linked' : muted('not linked'), n.outbox ? html`<span class="warn">${n.outbox} queued</span>` : '', lacks.length ? chips(lacks) : ''].filter(Boolean);
    return {
      attrs: { 'data-node': n.name, 'data-state': n.state },
      cells: [
        html`<strong>${n.name}</strong>${n.local ? html` ${chip('local')}` : ''}<div class="muted small">${n.id}</div>`,
        { content: badge(n.state), cls: 'state' },
        timeAgo(n.lastHeartbeat, now),
        html`<code>${n.address || '—'}</code>`,
        chips(labels),
        chips(n.plugins.map(pluginChip)),
        agent.length ? agent.flatMap((a, i) => (i ? [' · ', a] : [a])) : '—',
        deleteNode(n),
      ],
    };
  });
  const list = table({ columns: ['Node', 'State', 'Last heartbeat', 'Address', 'Labels', 'Plugins', 'Agent', 'Actions'], rows, empty: 'No node has joined yet. Open "Add a node" below for a join token and the install line.', cls: 'nodes' });
  return { id: 's-nodes', slot: 'fixed', html: html`<h2>Nodes</h2>${list}${addNode(d, now, nodes.length === 0)}`.value };
}
