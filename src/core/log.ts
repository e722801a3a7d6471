/** pino logging: pretty-ish lines on a TTY would need pino-pretty, so JSON everywhere, secrets redacted. */
import pino, { type Logger } from 'pino';

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
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything (library use, tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
