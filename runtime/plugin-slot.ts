import type { Log } from '../plugins/sdk/log.ts';
import type { PluginStatus } from './link.ts';

/** What both plugin hosts track per loaded plugin. */
export interface SlotBase {
  name: string;
  instance?: { stop(): Promise<void> | void };
  stopSchedule?: () => void;
  state: PluginStatus['state'];
  error?: string;
}

/** Stops a plugin instance and everything it scheduled; a failing stop is logged, never thrown. */
export async function stopSlotInstance(slot: SlotBase, log: Log): Promise<void> {
  try {
    await slot.instance?.stop();
  } catch (err) {
    log.warn({ plugin: slot.name, err: (err as Error).message }, 'plugin stop failed');
  }
  slot.stopSchedule?.();
  slot.instance = undefined;
  if (slot.state === 'running') slot.state = 'stopped';
}
