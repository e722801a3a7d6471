/** The admin HTTP endpoint (loopback by default): Prometheus `/metrics` and `/healthz`. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MatchdError } from './errors.ts';
import type { Metrics } from './metrics.ts';
import { portInUseMessage } from './port-check.ts';

const ADMIN_ROUTES = ['GET /metrics', 'GET /healthz'];

export interface Health {
  status: 'ok' | 'degraded' | 'down';
  [key: string]: unknown;
}

export class AdminServer {
  private server: http.Server | undefined;
  /** Requests for anything but /metrics and /healthz (the web page, when it shares this listener). */
  private mounted: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;

  constructor(private readonly metrics: Metrics, private readonly health: () => Health) {}

  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new MatchdError('MATCHD_PORT_IN_USE', portInUseMessage('admin.port', host, port)) : err));
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  /** Serve every other path with `handler` (the web page); undefined unmounts it. */
  mount(handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined): void {
    this.mounted = handler;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    try {
      if (req.method === 'GET' && url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
        res.end(await this.metrics.registry.metrics());
      } else if (req.method === 'GET' && url.pathname === '/healthz') {
        const h = this.health();
        res.writeHead(h.status === 'down' ? 503 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(h));
      } else if (this.mounted) {
        this.mounted(req, res);
      } else {
        // The same error shape as every other HTTP answer of matchd's: { error: { code, message } }.
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          error: { code: 'MATCHD_REQUEST_INVALID', message: `no route ${req.method} ${url.pathname}; this server has ${ADMIN_ROUTES.join(', ')}` },
          routes: ADMIN_ROUTES,
        }));
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'MATCHD_INTERNAL', message: (err as Error).message } }));
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
