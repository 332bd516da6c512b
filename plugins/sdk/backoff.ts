/** goim's reconnect shape: delay grows by factor from base, capped, with +/- jitter. Seconds. */
export interface BackoffConfig {
  baseDelay: number;
  factor: number;
  jitter: number;
  maxDelay: number;
}

export const defaultBackoff: BackoffConfig = { baseDelay: 3, factor: 1.8, jitter: 0.3, maxDelay: 300 };

export function backoffDelayMs(attempt: number, cfg: BackoffConfig, random = Math.random): number {
  const raw = Math.min(cfg.baseDelay * Math.pow(cfg.factor, attempt), cfg.maxDelay);
  const spread = raw * cfg.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round((raw + spread) * 1000));
}
