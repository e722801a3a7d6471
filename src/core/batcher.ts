/**
 * A dynamic batcher: items pushed from anywhere are grouped into one call of `run` when `maxBatch` are waiting
 * or `maxDelayMs` after the first one arrived, with at most `maxInFlight` batches running (so decoding of the next
 * batch overlaps inference of the current one). The queue is bounded: a full queue refuses instead of growing.
 */

export interface BatcherOptions<T, R> {
  maxBatch: number;
  maxDelayMs: number;
  /** Most items waiting (not yet in a running batch). */
  maxQueue: number;
  maxInFlight: number;
  run(items: T[]): Promise<R[]>;
  /** Called with each batch's size and how long it ran (metrics). */
  onBatch?(size: number, ms: number): void;
}

export class QueueFullError extends Error {
  constructor(readonly capacity: number) {
    super(`the batch queue is full (${capacity} waiting)`);
  }
}

interface Waiting<T, R> {
  item: T;
  resolve(r: R): void;
  reject(err: unknown): void;
}

export class Batcher<T, R> {
  private queue: Waiting<T, R>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: BatcherOptions<T, R>) {}

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

  /** Queue one item; resolves with its own result. Throws QueueFullError when the queue is full. */
  push(item: T): Promise<R> {
    if (this.queue.length >= this.opts.maxQueue) throw new QueueFullError(this.opts.maxQueue);
    const p = new Promise<R>((resolve, reject) => this.queue.push({ item, resolve, reject }));
    this.schedule();
    return p;
  }

  private schedule(): void {
    if (this.inFlight >= this.opts.maxInFlight || this.queue.length === 0) return;
    if (this.queue.length >= this.opts.maxBatch || this.opts.maxDelayMs === 0) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.opts.maxDelayMs);
    }
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
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
      // Only full batches go out back to back; a partial one waits for its delay unless nothing else is running.
      if (this.queue.length < this.opts.maxBatch) break;
    }
    this.schedule();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
