/**
 * What an unauthenticated peer can hold on the intake server. Connections: at most `maxConnections` in all and
 * `maxConnectionsPerAddress` per address (more are closed at once); headers must arrive within `headersTimeoutMs`
 * and the whole request within `requestTimeoutMs` (Node's own timers, checked every quarter second or so). Bodies:
 * a request without a valid bearer token is refused before its body is read, unless it carries Standard Webhooks
 * headers with a fresh timestamp — its body must be read to check the signature, so such "unverified" requests are
 * capped in number (in all and per address) and in bytes (declared length, or `jsonBytes` when undeclared).
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { WebhookConfig } from './config.ts';

export type Admission = { ok: true; release: () => void } | { ok: false; reason: string };

export class IntakeLimits {
  private readonly perAddress = new Map<string, number>();
  private readonly unverifiedByAddress = new Map<string, number>();
  private unverified = 0;
  private unverifiedBytes = 0;

  constructor(private readonly limits: WebhookConfig['limits']) {}

  /** Node http server options for the timeouts (fastify passes them to http.createServer). */
  httpOptions(): http.ServerOptions {
    return {
      headersTimeout: this.limits.headersTimeoutMs,
      requestTimeout: this.limits.requestTimeoutMs,
      keepAliveTimeout: this.limits.keepAliveTimeoutMs,
      // Node checks the two timeouts above on this interval (30 s by default, too coarse for a 10 s limit).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(this.limits.headersTimeoutMs / 4))),
    };
  }

  /** Count connections per address on `server`; close those over the caps before any byte is read. */
  attach(server: http.Server): void {
    server.maxConnections = this.limits.maxConnections;
    server.on('connection', (socket: Socket) => {
      const addr = socket.remoteAddress ?? '?';
      const n = (this.perAddress.get(addr) ?? 0) + 1;
      this.perAddress.set(addr, n);
      socket.once('close', () => {
        const left = (this.perAddress.get(addr) ?? 1) - 1;
        if (left > 0) this.perAddress.set(addr, left);
        else this.perAddress.delete(addr);
      });
      if (n > this.limits.maxConnectionsPerAddress) socket.destroy();
    });
  }

  /** Open connections from `addr` (tests and health). */
  connectionsFrom(addr: string): number {
    return this.perAddress.get(addr) ?? 0;
  }

  /** Admit a request whose body must be read before it can be authenticated; `release` when it is answered. */
  admitUnverified(addr: string, declaredBytes: number | undefined): Admission {
    const bytes = Math.min(declaredBytes ?? this.limits.jsonBytes, this.limits.jsonBytes);
    const fromAddr = this.unverifiedByAddress.get(addr) ?? 0;
    if (fromAddr >= this.limits.unverifiedPerAddress) return { ok: false, reason: `${fromAddr} unverified requests from this address are still being read (limits.unverifiedPerAddress)` };
    if (this.unverified >= this.limits.unverifiedRequests) return { ok: false, reason: `${this.unverified} unverified requests are still being read (limits.unverifiedRequests)` };
    if (this.unverifiedBytes + bytes > this.limits.unverifiedBytes) return { ok: false, reason: `unverified request bodies would exceed ${this.limits.unverifiedBytes} bytes (limits.unverifiedBytes)` };
    this.unverified++;
    this.unverifiedBytes += bytes;
    this.unverifiedByAddress.set(addr, fromAddr + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.unverified--;
        this.unverifiedBytes -= bytes;
        const left = (this.unverifiedByAddress.get(addr) ?? 1) - 1;
        if (left > 0) this.unverifiedByAddress.set(addr, left);
        else this.unverifiedByAddress.delete(addr);
      },
    };
  }
}
