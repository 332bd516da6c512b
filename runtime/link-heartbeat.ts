import { LINK_LIMITS, type AgentMessage, type PluginStatus } from './link.ts';

type Heartbeat = Extract<AgentMessage, { t: 'hb' }>;

const STATES = new Set(['running', 'failed', 'stopped']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/**
 * A heartbeat checked by hand, the same as AgentMessage's `hb` branch would check it, or undefined for
 * anything it does not accept at once (the schema then decides and names the problem). Heartbeats are
 * nearly every message on the link (one per agent every 2 s): the schema's parse allocated about
 * 1.5 KB per message, half of a controller's garbage at 10,000 links. Like the schema, it copies only
 * the fields it knows (unknown keys are dropped, never stored).
 */
export function fastHeartbeat(v: unknown): Heartbeat | undefined {
  if (!isObject(v) || v.t !== 'hb' || !isCount(v.seq) || typeof v.ts !== 'number' || !Number.isFinite(v.ts) || !isObject(v.summary)) return undefined;
  const { plugins, outbox } = v.summary;
  const summary: Heartbeat['summary'] = {};
  if (outbox !== undefined) {
    if (!isCount(outbox)) return undefined;
    summary.outbox = outbox;
  }
  if (plugins !== undefined) {
    if (!Array.isArray(plugins) || plugins.length > LINK_LIMITS.plugins) return undefined;
    const list: PluginStatus[] = [];
    for (const p of plugins) {
      if (!isObject(p) || !isText(p.name, LINK_LIMITS.names) || typeof p.state !== 'string' || !STATES.has(p.state)) return undefined;
      if (p.error !== undefined && !isText(p.error, LINK_LIMITS.error)) return undefined;
      list.push(p.error === undefined ? { name: p.name, state: p.state as PluginStatus['state'] } : { name: p.name, state: p.state as PluginStatus['state'], error: p.error });
    }
    summary.plugins = list;
  }
  return { t: 'hb', seq: v.seq, ts: v.ts, summary };
}
