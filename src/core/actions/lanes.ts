/**
 * Independent lanes for the outbox runner, one per action kind, each with its own concurrency: a callback receiver
 * that hangs can fill the `callback` lane, never the `move`/`sidecar` lanes of other jobs.
 */
export class Lanes {
  private readonly running = new Map<string, number>();

  constructor(private readonly limitOf: (lane: string) => number) {}

  /** Take a slot in `lane`; false when it is full. */
  tryAcquire(lane: string): boolean {
    const n = this.running.get(lane) ?? 0;
    if (n >= this.limitOf(lane)) return false;
    this.running.set(lane, n + 1);
    return true;
  }

  release(lane: string): void {
    const n = (this.running.get(lane) ?? 1) - 1;
    if (n > 0) this.running.set(lane, n);
    else this.running.delete(lane);
  }

  /** Lanes with no free slot (their due actions are not even fetched). */
  full(): string[] {
    return [...this.running].filter(([lane, n]) => n >= this.limitOf(lane)).map(([lane]) => lane);
  }

  /** Actions running, in every lane. */
  get size(): number {
    let n = 0;
    for (const v of this.running.values()) n += v;
    return n;
  }
}
