import { createScheduler, type Scheduler } from '../plugins/sdk/scheduler.ts';
import type { Scope } from './scope.ts';

/** The plugin's timers: refused once it stopped, all stopped with it. */
export function scopedScheduler(scope: Scope, onError: (err: unknown) => void): Scheduler {
  const inner = createScheduler(onError);
  scope.add('schedules', () => inner.stopAll());
  return {
    every(ms, fn, opts) {
      scope.assertOpen('schedule a timer');
      return inner.every(ms, fn, opts);
    },
    cron(expression, fn) {
      scope.assertOpen('schedule a cron job');
      return inner.cron(expression, fn);
    },
    after(ms, fn) {
      scope.assertOpen('schedule a timer');
      return inner.after(ms, fn);
    },
    stopAll() {
      inner.stopAll();
    },
  };
}
