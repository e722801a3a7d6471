/**
 * Node prints process warnings (`process.emitWarning`: deprecations, a dependency's notices such as the AWS SDK's
 * "NodeVersionSupportWarning") as free text on stderr, in the middle of the daemon's JSON log lines. For the daemon
 * they become log lines of their own: level warn, the warning's name and code as fields, the text as the message.
 */
import type { Logger } from './log.ts';

/** Replace Node's default warning printer with log lines (for the daemon's process; the library never calls this). */
export function routeProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning'); // Node's own printer is a 'warning' listener added at start-up
  process.on('warning', (w: Error & { code?: string }) => {
    log.warn({ warning: w.name, ...(w.code ? { code: w.code } : {}) }, w.message.replace(/\s*\n\s*/g, ' '));
  });
}
