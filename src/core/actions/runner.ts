/**
 * The outbox runner: carries out journalled actions in order per job, retrying failures with backoff, and
 * marking an action dead (kept in the journal, counted in metrics) when retrying cannot help.
 */
import { MatchdError } from '../errors.ts';
import type { Action, Job, Journal } from '../journal.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { PermanentActionError, RetryLaterError, type ActionContext, type ActionResult } from './file-actions.ts';

export type ActionHandler = (payload: Record<string, unknown>, ctx: ActionContext) => Promise<ActionResult>;

export interface RunnerOptions {
  concurrency?: number;
  /** Clock for scheduling retries (tests pass a fake one). */
  now?: () => number;
  /** Delay before attempt n+1 (the last value repeats). */
  backoffMs?: number[];
  maxAttempts?: number;
}

export class ActionRunner {
  private timer: NodeJS.Timeout | undefined;
  private running = 0;
  /** Until start(), nothing runs: actions may belong to sources that do not exist yet. */
  private stopped = true;
  private started = false;
  private ticking = false;
  private idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly backoff: number[];
  private readonly maxAttempts: number;
  private readonly now: () => number;

  constructor(
    private readonly journal: Journal,
    /** Handlers by kind; a function is asked per action (plugin kinds belong to the job's source). */
    private readonly handlers: (a: Action, job: Job | undefined) => ActionHandler | undefined,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
    opts: RunnerOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 4;
    this.backoff = opts.backoffMs ?? [1_000, 5_000, 30_000, 120_000, 600_000];
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.stopped = false;
    this.started = true;
    this.kick();
  }

  /** Look for due actions now (after a job completes). */
  kick(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), 0);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      for (;;) {
        const due = this.journal.dueActions(this.concurrency);
        if (due.length === 0 || this.stopped) break;
        this.running = due.length;
        await Promise.all(due.map((a) => this.runOne(a)));
        this.running = 0;
      }
    } catch (err) {
      this.log.error({ err }, 'outbox runner failed; retrying shortly');
    } finally {
      this.ticking = false;
      this.running = 0;
      this.metrics?.outboxPending.set(this.journal.pendingActionCount());
      if (!this.stopped) {
        const next = this.journal.nextActionAt();
        const wait = next === null ? 1_000 : Math.max(0, Math.min(1_000, next - this.now()));
        this.timer = setTimeout(() => void this.tick(), wait);
      }
      if (this.journal.nextActionAt() === null || this.stopped) this.idleWaiters.splice(0).forEach((f) => f());
    }
  }

  private async runOne(a: Action): Promise<void> {
    const job = this.journal.get(a.jobId);
    const handler = this.handlers(a, job);
    const ctx: ActionContext = {
      jobId: a.jobId,
      job: {
        source: job?.source ?? '', rule: job?.rule ?? '', imagePath: job?.imagePath ?? '', meta: job?.meta ?? {}, origin: job?.origin ?? {},
        outcome: job?.outcome ?? null, result: (job?.result as Record<string, unknown> | null) ?? null, createdAt: job?.createdAt ?? 0,
      },
      attempt: a.attempts + 1,
      now: this.now,
      location: job?.location ?? job?.imagePath ?? '',
      remember: (payload) => {
        a.payload = payload;
        this.journal.updatePayload(a.id, payload);
      },
      log: this.log,
    };
    try {
      if (!handler) throw new PermanentActionError(`no handler for action '${a.kind}' (source '${job?.source}' provides none)`);
      const result = await handler(a.payload, ctx);
      this.journal.actionDone(a, result.location);
      this.metrics?.actions.inc({ kind: a.kind, result: 'done' });
    } catch (err) {
      const attempt = a.attempts + 1;
      // An action that schedules its own retries decides when to give up (it throws PermanentActionError then).
      const own = err instanceof RetryLaterError;
      const permanent = err instanceof PermanentActionError || (!own && attempt >= this.maxAttempts);
      const message = (err as Error).message;
      const delay = own ? err.retryAfterMs : this.backoff[Math.min(attempt - 1, this.backoff.length - 1)]!;
      const retryAt = permanent ? null : this.now() + delay;
      this.journal.actionFailed(a, message, retryAt);
      this.metrics?.actions.inc({ kind: a.kind, result: permanent ? 'dead' : 'retry' });
      this.metrics?.errors.inc({ code: err instanceof MatchdError ? err.code : 'MATCHD_ACTION_FAILED' });
      this.log[permanent ? 'error' : 'warn']({ jobId: a.jobId, action: a.kind, attempt, err: message }, permanent ? 'action failed for good' : 'action failed; will retry');
    }
  }

  /** Resolves when no action is due or pending, or after `ms`. */
  async drain(ms: number): Promise<boolean> {
    if (this.journal.nextActionAt() === null) return true;
    if (!this.started) return false;
    this.kick();
    let timeout: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timeout = setTimeout(() => resolve(false), ms))),
    ]);
    clearTimeout(timeout);
    return done;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
