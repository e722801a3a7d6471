/**
 * `journal.retainDays`, applied: finished jobs older than that (and their actions and dedupe keys) are pruned soon
 * after start-up and then every hour, in batches of short transactions so the journal stays responsive. Jobs with
 * an action still pending are never pruned.
 */
import type { JournalHealth } from './journal-health.ts';
import type { Journal } from './journal.ts';
import type { Logger } from './log.ts';

const BATCH = 500;

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly journal: Journal,
    private readonly health: JournalHealth,
    private readonly log: Logger,
    private readonly days: number,
    private readonly everyMs = 3_600_000,
  ) {}

  /** First prune after `firstMs`, then every `everyMs`. */
  start(firstMs = Math.min(10_000, this.everyMs)): void {
    const tick = () => {
      void this.pruneNow().finally(() => {
        this.timer = setTimeout(tick, this.everyMs);
        this.timer.unref();
      });
    };
    this.timer = setTimeout(tick, firstMs);
    this.timer.unref();
  }

  /** Prune now (one run at a time); resolves with how many jobs were forgotten. */
  pruneNow(): Promise<number> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<number> {
    let total = 0;
    for (;;) {
      if (!this.health.ok || this.stopped) break;
      const n = this.health.run('prune old jobs', () => this.journal.prune(this.days, BATCH), 0);
      total += n;
      if (n < BATCH) break;
      await new Promise((r) => setImmediate(r)); // let intake and scoring in between batches
    }
    if (total) this.log.info({ pruned: total, retainDays: this.days }, 'pruned finished jobs past journal.retainDays');
    // Hourly, with the pruning: keeps the planner's statistics current as the journal grows (journal.ts).
    if (this.health.ok && !this.stopped) this.health.run('refresh query statistics', () => this.journal.optimize(), undefined);
    return total;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
