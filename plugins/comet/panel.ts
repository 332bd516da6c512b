import { badge, form, html, keyValues, table, type DashboardPanel } from '../sdk/index.ts';
import type { CometStatus } from './status.ts';

/** Totals, the largest rooms, connections per node, and a test push to a key or a room. */
export function cometPanel(status: () => CometStatus): DashboardPanel {
  return {
    title: 'Comet (goim push gateway)',
    render() {
      const s = status();
      return html`${keyValues([
        ['Connections', String(s.conns)],
        ['Client IPs', String(s.ips)],
        ['Rooms', String(s.rooms)],
        ['Nodes running comet', String(s.nodes.filter((n) => n.plugin === 'running').length)],
      ])}
      <h3>Top rooms</h3>
      ${table({
        columns: ['Room', 'Online'],
        rows: s.top.map((r) => ({ attrs: { 'data-room': r.room }, cells: [r.room, String(r.count)] })),
        empty: 'No connection is in a room.',
      })}
      <h3>Nodes</h3>
      ${table({
        columns: ['Node', 'State', 'Comet', 'Connections', 'Client IPs', 'Rooms', 'Delivered', 'Dropped (slow)'],
        rows: s.nodes.map((n) => ({
          attrs: { 'data-node': n.id, 'data-conns': n.conns },
          cells: [n.name, badge(n.state), badge(n.plugin), String(n.conns), String(n.ips), String(n.rooms), String(n.delivered), String(n.dropped)],
        })),
        empty: 'No node runs the comet plugin.',
        cls: 'nodes',
      })}
      ${form({
        id: 'comet-push',
        action: '/api/v1/comet/push',
        submit: 'Push test message',
        fields: [
          { name: 'to', label: 'To', type: 'select', options: [{ value: 'key', label: 'a key' }, { value: 'room', label: 'a room' }], value: 'room' },
          { name: 'target', label: 'Key or room', required: true, placeholder: 'live://1000', hint: 'A connection key, or a room as type://id.', maxLength: 4096 },
          { name: 'operation', label: 'Operation', type: 'number', value: 1000, min: 1, max: 2147483647, required: true },
          { name: 'message', label: 'Message', type: 'textarea', value: 'hello from the dashboard', required: true, maxLength: 65536 },
        ],
        success: 'Sent to {nodes} node(s).',
      })}`;
    },
  };
}
