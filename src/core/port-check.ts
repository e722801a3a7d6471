/** Is a TCP port free to listen on? Checked at start-up, before matchd creates anything (the answer can go stale: the real listen maps EADDRINUSE too). */
import net from 'node:net';

/** null when `host:port` can be listened on now; else 'in-use' or another reason (an address not on this host...). */
export function probePort(host: string, port: number): Promise<null | 'in-use' | string> {
  if (port === 0) return Promise.resolve(null);
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? 'in-use' : `${err.code ?? err.message}`));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

/** The message for a port that is taken, naming the config key to change. */
export function portInUseMessage(key: string, host: string, port: number): string {
  return `${key}: ${host}:${port} is already in use (another matchd, or another program); change ${key} or stop what listens there`;
}
