/**
 * A counting semaphore: at most `max` tasks of a kind at once (e.g. image decodes). `max` may be a function, read at
 * every admission, for a limit that changes with the state of the program (call `recheck()` when it may have grown).
 */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit: () => number;

  constructor(max: number | (() => number)) {
    this.limit = typeof max === 'number' ? () => max : max;
  }

  get max(): number {
    return this.limit();
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit() || this.waiting.length > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.recheck();
    }
  }

  /** Admit waiting tasks while the limit allows (each admitted task's slot is taken before it resumes). */
  recheck(): void {
    while (this.waiting.length > 0 && this.active < this.limit()) {
      this.active++;
      this.waiting.shift()!();
    }
  }

  get pending(): number {
    return this.active + this.waiting.length;
  }
}
