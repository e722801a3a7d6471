/**
 * A dynamic batcher: items pushed from anywhere are grouped into one call of `run` when `maxBatch` items (or
 * `maxCost` of budget, e.g. visual tokens) are waiting, or `maxDelayMs` after the first one arrived — sooner when
 * the producer says nothing more is on its way — with at most `maxInFlight` batches running (so preparing the next
 * batch overlaps inference of the current one). The queue is bounded: a full queue refuses instead of growing.
 */
import { MatchdError } from './errors.ts';

export interface BatcherOptions<T, R> {
  maxBatch: number;
  /** Most total `cost` per batch (default: unlimited). An item costing more than this still runs, alone. */
  maxCost?: number;
  /** An item's share of `maxCost` (default 1). */
  cost?(item: T): number;
  maxDelayMs: number;
  /** Most items waiting (not yet in a running batch). */
  maxQueue: number;
  maxInFlight: number;
  /**
   * True while more items are about to arrive (e.g. images still being decoded): a partial batch waits for them, up
   * to maxDelayMs. When it says false, a partial batch goes on the next turn of the event loop. Without it, a
   * partial batch always waits maxDelayMs.
   */
  expectingMore?(): boolean;
  run(items: T[]): Promise<R[]>;
  /** Called with each batch's size and how long it ran (metrics). */
  onBatch?(size: number, ms: number): void;
}

interface Waiting<T, R> {
  item: T;
  cost: number;
  resolve(r: R): void;
  reject(err: unknown): void;
}

export class Batcher<T, R> {
  private queue: Waiting<T, R>[] = [];
  private queuedCost = 0;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly maxCost: number;

  constructor(private readonly opts: BatcherOptions<T, R>) {
    this.maxCost = opts.maxCost ?? Infinity;
  }

  get queued(): number {
    return this.queue.length;
  }

  get running(): number {
    return this.inFlight;
  }

  /** Room left before push refuses. */
  get room(): number {
    return this.opts.maxQueue - this.queue.length;
  }

  /**
   * Queue one item; resolves with its own result. A full queue throws MATCHD_QUEUE_FULL: callers size their intake
   * from `room`, so this means a caller ignored it.
   */
  push(item: T): Promise<R> {
    const capacity = this.opts.maxQueue;
    if (this.queue.length >= capacity) throw new MatchdError('MATCHD_QUEUE_FULL', `the batch queue is full (${capacity} waiting)`, { capacity });
    const cost = this.opts.cost?.(item) ?? 1;
    const p = new Promise<R>((resolve, reject) => this.queue.push({ item, cost, resolve, reject }));
    this.queuedCost += cost;
    this.schedule();
    return p;
  }

  /** The producer's outlook changed (e.g. an expected item failed to arrive): reconsider sending a partial batch. */
  poke(): void {
    this.schedule();
  }

  private full(): boolean {
    return this.queue.length >= this.opts.maxBatch || this.queuedCost >= this.maxCost;
  }

  private schedule(): void {
    if (this.inFlight >= this.opts.maxInFlight || this.queue.length === 0) return;
    if (this.full()) {
      this.flush();
    } else if (this.opts.maxDelayMs === 0 || this.opts.expectingMore?.() === false) {
      // Next turn, not now: items pushed in the same synchronous loop still join this batch.
      this.soon ??= setImmediate(() => {
        this.soon = undefined;
        this.flush();
      });
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.opts.maxDelayMs);
    }
  }

  /** The front of the queue up to maxBatch items and maxCost (at least one item). */
  private take(): Waiting<T, R>[] {
    let n = 0;
    let cost = 0;
    while (n < this.queue.length && n < this.opts.maxBatch && (n === 0 || cost + this.queue[n]!.cost <= this.maxCost)) cost += this.queue[n++]!.cost;
    this.queuedCost -= cost;
    return this.queue.splice(0, n);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      this.inFlight++;
      const start = performance.now();
      this.opts
        .run(batch.map((w) => w.item))
        .then(
          (results) => {
            if (results.length !== batch.length) throw new Error(`batch run returned ${results.length} results for ${batch.length} items`);
            batch.forEach((w, i) => w.resolve(results[i]!));
          },
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        )
        .catch((err: unknown) => batch.forEach((w) => w.reject(err)))
        .finally(() => {
          this.inFlight--;
          this.opts.onBatch?.(batch.length, performance.now() - start);
          if (this.inFlight === 0 && this.queue.length === 0) this.idleWaiters.splice(0).forEach((f) => f());
          this.schedule();
        });
      // Only full batches go out back to back; a partial one waits its turn unless nothing else is running.
      if (!this.full()) break;
    }
    this.schedule();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
