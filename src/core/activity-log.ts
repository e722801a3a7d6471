/**
 * What the daemon says at the default log level while it works: one info line per scored job (source, file → band,
 * the deciding text and its score, milliseconds since the job was submitted), a one-line summary every
 * `everyMs` while busy (jobs/s, failures, queue depth), and a warning when a result matches no action list — a rule
 * whose `actions` has no entry for that band and no `default` leaves a watched file where it is.
 * Failed jobs have their own warning line (the daemon's `image could not be scored`), so they are only counted here.
 */
import path from 'node:path';
import type { Rule } from './config.ts';
import type { Job } from './journal.ts';
import type { Logger } from './log.ts';
import type { ScoredOutcome } from './router.ts';

export interface ActivityOptions {
  log: Logger;
  /** Jobs waiting in the journal now. */
  queued(): number;
  /** How often the summary is considered (default 10 s); it is logged only when something happened or waits. */
  everyMs?: number;
  now?: () => number;
}

export class ActivityLog {
  private jobs = 0;
  private failed = 0;
  private windowStart: number;
  private timer: NodeJS.Timeout | undefined;
  /** Rule + outcome pairs already warned about (once each: the per-job lines show every later one). */
  private readonly unmatched = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly o: ActivityOptions) {
    this.now = o.now ?? Date.now;
    this.windowStart = this.now();
  }

  start(): void {
    this.timer = setInterval(() => this.summary(), this.o.everyMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.summary();
  }

  /** A job's result was recorded (its actions journalled). */
  recorded(job: Job, rule: Rule, o: ScoredOutcome): void {
    this.jobs++;
    if (o.outcome === 'error') this.failed++;
    else {
      const ms = Math.max(0, Math.round(this.now() - job.createdAt));
      const d = o.decidedBy;
      const file = String(job.origin.relativePath ?? path.basename(job.imagePath));
      this.o.log.info(
        { jobId: job.id, source: job.source, file: job.imagePath, outcome: o.outcome, ...(d ? { decidedBy: d.text, score: d.score, cosine: d.cosine } : {}), ms },
        `${file} → ${o.outcome}${d ? ` (${JSON.stringify(d.text)}: ${d.score.toFixed(3)})` : ''} in ${ms} ms`,
      );
    }
    const keys = Object.keys(rule.actions);
    const key = `${job.rule}\0${o.outcome}`;
    if (keys.length && !rule.actions[o.outcome] && !rule.actions.default && !job.extra.actions?.length && !this.unmatched.has(key)) {
      this.unmatched.add(key);
      this.o.log.warn(
        { rule: job.rule, outcome: o.outcome, actionsFor: keys, jobId: job.id },
        `no action for outcome '${o.outcome}' in rule '${job.rule}' (it has actions for ${keys.join(', ')}; no default): ` +
          'the result is only in the journal and a watched file stays where it is; further ones are not warned about',
      );
    }
  }

  /** One line for the last window, when anything was done or is waiting. */
  private summary(): void {
    const t = this.now();
    const seconds = Math.max(0.001, (t - this.windowStart) / 1000);
    let queued = 0;
    try {
      queued = this.o.queued();
    } catch {
      // the journal is paused; its own warnings say so
    }
    if (this.jobs || queued) {
      const rate = this.jobs / seconds;
      this.o.log.info(
        { jobs: this.jobs, failed: this.failed, jobsPerSec: Number(rate.toFixed(2)), queued, seconds: Number(seconds.toFixed(1)) },
        `last ${seconds.toFixed(0)} s: ${this.jobs} job(s) (${rate.toFixed(1)}/s)${this.failed ? `, ${this.failed} failed` : ''}; ${queued} queued`,
      );
    }
    this.jobs = 0;
    this.failed = 0;
    this.windowStart = t;
  }
}
