/**
 * Callers waiting for a job's result (`ctx.waitForJob`: a webhook caller that asked for the result inline). The
 * daemon calls `settled(id)` when it records a result; on a shared journal another node may record it, so while
 * anyone waits the waited jobs are read every 200 ms (one indexed read each; the waits are few).
 */
import type { Job } from './journal.ts';
import type { JobView } from './plugin.ts';

export interface JobWaitersOptions {
  /** The job as sources see it; throws while the journal is paused. */
  view(id: string): JobView | undefined;
  /**
   * Polling for results other nodes record: whether the journal is shared (else nothing polls), whether it answers
   * now, and a read of one waited job (undefined while the journal is paused).
   */
  poll?: { shared(): boolean; ok(): boolean; read(id: number): Job | undefined };
}

export class JobWaiters {
  private readonly waiters = new Map<string, (() => void)[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: JobWaitersOptions) {}

  /** Resolves with the job once it is done or failed, or with its current view after `timeoutMs`. */
  wait(id: string, timeoutMs: number): Promise<JobView | undefined> {
    const now = this.o.view(id);
    if (!now || now.state === 'done' || now.state === 'failed' || timeoutMs <= 0) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(id) ?? [];
      // view throws while the journal is paused: reject (the caller answers with the code), never throw in a timer.
      const settle = () => {
        try {
          resolve(this.o.view(id));
        } catch (err) {
          reject(err);
        }
      };
      const done = () => {
        clearTimeout(timer);
        settle();
      };
      const timer = setTimeout(() => {
        const rest = this.waiters.get(id)?.filter((w) => w !== done) ?? [];
        if (rest.length) this.waiters.set(id, rest);
        else this.waiters.delete(id);
        settle();
      }, timeoutMs);
      list.push(done);
      this.waiters.set(id, list);
      this.watch();
    });
  }

  /** The job's result is recorded: every waiter gets it now. */
  settled(id: string): void {
    const list = this.waiters.get(id);
    if (!list) return;
    this.waiters.delete(id);
    list.forEach((w) => w());
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private watch(): void {
    const poll = this.o.poll;
    if (!poll?.shared() || this.timer) return;
    this.timer = setInterval(() => {
      if (!this.waiters.size) {
        this.stop();
        return;
      }
      if (!poll.ok()) return;
      for (const id of [...this.waiters.keys()]) {
        const job = poll.read(Number(id));
        if (job?.state === 'done' || job?.state === 'failed') this.settled(id);
      }
    }, 200);
    this.timer.unref();
  }
}
