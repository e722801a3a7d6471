/** pino logging: readable lines on a terminal (pino-pretty), JSON lines otherwise; secrets redacted either way. */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  '*.password', '*.secret', '*.token', '*.authorization', '*.accessKeyId', '*.secretAccessKey', '*.sessionToken',
  'config.*.secret', 'headers.authorization', 'req.headers.authorization',
];

export interface LogOptions {
  level?: string;
  /** Where lines go (default stdout); tests pass a stream to read them back. */
  destination?: pino.DestinationStream;
}

export function createLogger({ level = 'info', destination }: LogOptions = {}): Logger {
  return pino(
    { level, base: { name: 'matchd' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? (process.stdout.isTTY ? pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }) : pino.destination({ dest: 1, sync: false })),
  );
}

/** A logger that drops everything (library use, tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
