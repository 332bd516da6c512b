import { pino, type Logger } from 'pino';

export type Log = Logger;

/** Field names whose values are secrets wherever they appear in a log record. */
const SECRET_KEYS = [
  'token', 'secret', 'password', 'passwd', 'authorization', 'credential', 'apiKey', 'api_key',
  'accessKey', 'accessSecret', 'secretKey', 'privateKey', 'adminToken', 'cocoaSecret', 'app_secret',
];

const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `headers.${k}`]);

export function createLog(name: string, level = process.env.OUTPOST_LOG_LEVEL ?? 'info'): Log {
  return pino({ name, level, redact: { paths, censor: '[redacted]' } }, pino.destination({ fd: 2, sync: false }));
}
