import { EventEmitter } from 'node:events';

/** In-process bus: one plugin may react to another's events without importing it. */
export interface EventBus {
  emit(event: string, payload: unknown): void;
  on(event: string, handler: (payload: unknown) => void): () => void;
}

export function createEventBus(onError: (event: string, err: unknown) => void): EventBus {
  const ee = new EventEmitter();
  ee.setMaxListeners(0);
  return {
    emit(event, payload) {
      ee.emit(event, payload);
    },
    on(event, handler) {
      // One faulty listener must not break the emitter or the other listeners.
      const safe = (payload: unknown) => {
        try {
          const r = handler(payload) as unknown;
          if (r instanceof Promise) r.catch((err) => onError(event, err));
        } catch (err) {
          onError(event, err);
        }
      };
      ee.on(event, safe);
      return () => ee.off(event, safe);
    },
  };
}
