import { pino, type DestinationStream, type Logger } from 'pino';

export type Log = Logger;

/**
 * Secrets are Secret values, which serialise as `***` (secret.ts): the log needs no list of field
 * names to hide, and a secret under an unexpected name is hidden all the same.
 */
export function createLog(name: string, level = process.env.OUTPOST_LOG_LEVEL ?? 'info', dest: DestinationStream = pino.destination({ fd: 2, sync: false })): Log {
  return pino({ name, level }, dest);
}
