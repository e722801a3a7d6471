/**
 * Whether the store answers, seen from every request the source's client makes (listing, downloads, its actions):
 * a middleware on the client records each outcome. A request that fails without an answer (refused, reset, timed
 * out) or with a 5xx other than throttling marks the store unreachable until a request gets an answer again; a
 * request in flight longer than `stallMs` (a hung or SIGSTOPped server) is reported before it times out.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, unreachable } from './client.ts';

export interface StoreState {
  /** Since when no request got an answer (epoch ms), or undefined while it answers. */
  unreachableSince?: number;
  /** Requests failed in a row without an answer. */
  failures: number;
  /** The last such failure, described. */
  lastError?: string;
  /** How long the oldest request in flight has waited, when that is over `stallMs`. */
  stalledMs?: number;
}

export class StoreWatch {
  private unreachableSince: number | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private readonly inFlight = new Map<number, number>();
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  private stalled = false;
  private stopped = false;

  constructor(private readonly stallMs: number, private readonly onChange: () => void, private readonly now: () => number = Date.now) {}

  /** Observe every request of `client` (outermost step: errors arrive parsed, with their HTTP status). */
  attach(client: S3Client): void {
    client.middlewareStack.add(
      (next) => async (args) => {
        const id = this.nextId++;
        this.inFlight.set(id, this.now());
        this.arm();
        try {
          const out = await next(args);
          this.answered();
          return out;
        } catch (err) {
          if (unreachable(err)) this.failed(err);
          else if ((err as Error)?.name !== 'AbortError') this.answered();
          throw err;
        } finally {
          this.inFlight.delete(id);
          this.checkStall();
        }
      },
      { step: 'initialize', name: 'matchdStoreWatch', priority: 'high' },
    );
  }

  state(): StoreState {
    const oldest = Math.min(...this.inFlight.values());
    const waited = this.inFlight.size ? this.now() - oldest : 0;
    return {
      failures: this.failures,
      ...(this.unreachableSince !== undefined ? { unreachableSince: this.unreachableSince } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(waited >= this.stallMs ? { stalledMs: waited } : {}),
    };
  }

  get reachable(): boolean {
    return this.unreachableSince === undefined;
  }

  private answered(): void {
    if (this.unreachableSince === undefined && this.failures === 0) return;
    this.unreachableSince = undefined;
    this.failures = 0;
    this.lastError = undefined;
    this.onChange();
  }

  private failed(err: unknown): void {
    if (this.stopped) return; // requests cut short by the source stopping say nothing about the store
    this.failures++;
    this.unreachableSince ??= this.now();
    this.lastError = describe(err);
    this.onChange();
  }

  /** While requests are in flight, look once a (short) while for one waiting past stallMs. */
  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.checkStall(), Math.max(50, Math.min(1000, this.stallMs / 4)));
    this.timer.unref();
  }

  private checkStall(): void {
    const stalled = this.state().stalledMs !== undefined;
    if (this.inFlight.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (stalled !== this.stalled) {
      this.stalled = stalled;
      this.onChange();
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
