/**
 * The keys bucket notifications named, waiting to be looked at: each key once however often it is named, at most
 * `concurrency` looked at together, a key looked at again later when asked to (too young, download failed, store
 * down). Whoever queued a key is told once it is handled (the SQS feed deletes its message only then).
 */

/** What looking at a key came to: handled (taken, known, or gone), or "again in this many ms". */
export type Looked = 'handled' | { againInMs: number };

export class EventQueue {
  private readonly queued = new Map<string, { due: number; tries: number; done: (() => void)[] }>();
  private draining: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `look(key, tries)`: look at one key (`tries` before this one); it must not throw. */
  constructor(private readonly concurrency: number, private readonly look: (key: string, tries: number) => Promise<Looked>) {}

  /** Queue keys; resolves once every one of them is handled, however many looks that takes. */
  add(keys: string[]): Promise<void> {
    const now = Date.now();
    const waits = keys.map((key) => {
      const q = this.queued.get(key) ?? { due: now, tries: 0, done: [] };
      this.queued.set(key, q);
      return new Promise<void>((resolve) => q.done.push(resolve));
    });
    this.kick();
    return Promise.all(waits).then(() => {});
  }

  private kick(): void {
    if (this.draining || this.stopped) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      clearTimeout(this.timer);
      let due = Infinity;
      for (const q of this.queued.values()) due = Math.min(due, q.due);
      if (Number.isFinite(due) && !this.stopped) this.timer = setTimeout(() => this.kick(), Math.max(0, due - Date.now()));
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const now = Date.now();
      const due = [...this.queued].filter(([, q]) => q.due <= now).slice(0, this.concurrency);
      if (due.length === 0 || this.stopped) return;
      await Promise.all(due.map(async ([key, q]) => {
        this.queued.delete(key);
        const r = await this.look(key, q.tries);
        if (this.stopped) return;
        if (r === 'handled') return q.done.forEach((f) => f());
        const again = this.queued.get(key); // named again meanwhile: one entry, every waiter
        this.queued.set(key, { due: Date.now() + r.againInMs, tries: q.tries + 1, done: [...q.done, ...(again?.done ?? [])] });
      }));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.draining?.catch(() => {});
    clearTimeout(this.timer);
  }
}
