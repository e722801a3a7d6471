/**
 * Telling a service manager how the daemon is doing (systemd's Type=notify, sd_notify(3)): when $NOTIFY_SOCKET is
 * set, `READY=1` once the sources run and `STOPPING=1` when a drain begins, each one datagram sent by the addon (Node
 * has no unix datagram sockets). Without $NOTIFY_SOCKET nothing is sent. A failed send is a warning in the log:
 * systemd then times the start out itself, which says more than a daemon that refuses to run.
 */
import type { Logger } from './log.ts';
import { addon } from './native.ts';

export type Notify = (state: string) => void;

/** A sender for this process's $NOTIFY_SOCKET (a no-op without one). The variable is removed so children don't inherit it. */
export function serviceNotifier(log: Logger, env: NodeJS.ProcessEnv = process.env): Notify {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return () => {};
  delete env.NOTIFY_SOCKET;
  if (!socket.startsWith('/') && !socket.startsWith('@')) {
    log.warn({ notifySocket: socket }, 'NOTIFY_SOCKET is neither a path nor @abstract; not notifying the service manager');
    return () => {};
  }
  return (state) => {
    let failed: string | null;
    try {
      failed = addon().sdNotify(socket, state);
    } catch (err) {
      failed = (err as Error).message;
    }
    if (failed) log.warn({ notifySocket: socket, state: state.split('\n')[0], err: failed }, 'could not notify the service manager');
    else log.debug({ state: state.split('\n')[0] }, 'notified the service manager');
  };
}
