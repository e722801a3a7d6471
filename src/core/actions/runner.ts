/**
 * The outbox runner: carries out journalled actions in order per job, in independent lanes per kind (lanes.ts),
 * retrying failures with backoff, and marking an action dead (kept in the journal, counted in metrics) when
 * retrying cannot help.
 */
import { MatchdError } from '../errors.ts';
import type { Action, Job, Journal } from '../journal.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { PermanentActionError, RetryLaterError, type ActionContext, type ActionResult } from './file-actions.ts';
import { Lanes } from './lanes.ts';

export type ActionHandler = (payload: Record<string, unknown>, ctx: ActionContext) => Promise<ActionResult>;

/** How the runner reaches the journal: the daemon passes its JournalHealth so a write error pauses, never throws. */
export interface JournalGuard {
  readonly ok: boolean;
  run<T>(what: string, fn: () => T, fallback: T): T;
  runOrThrow<T>(what: string, fn: () => T): T;
}

const direct: JournalGuard = { ok: true, run: (_what, fn) => fn(), runOrThrow: (_what, fn) => fn() };

export interface RunnerOptions {
  /** Actions of one kind running at once (each kind is its own lane). */
  concurrency?: number;
  /** Per-kind overrides of `concurrency`. */
  laneConcurrency?: Record<string, number>;
  /** Clock for scheduling retries (tests pass a fake one). */
  now?: () => number;
  /** Delay before attempt n+1 (the last value repeats). */
  backoffMs?: number[];
  maxAttempts?: number;
  guard?: JournalGuard;
}

/** Due actions fetched per look (enough to fill every lane; the rest wait for the next look). */
const FETCH = 64;

export class ActionRunner {
  private timer: NodeJS.Timeout | undefined;
  /** Until start(), nothing runs: actions may belong to sources that do not exist yet. */
  private stopped = true;
  private started = false;
  private idleWaiters: (() => void)[] = [];
  private readonly lanes: Lanes;
  /** Ids of the actions running now (still pending in the journal until they finish). */
  private readonly inFlight = new Set<number>();
  private readonly backoff: number[];
  private readonly maxAttempts: number;
  private readonly now: () => number;
  private readonly guard: JournalGuard;

  constructor(
    private readonly journal: Journal,
    /** Handlers by kind; a function is asked per action (plugin kinds belong to the job's source). */
    private readonly handlers: (a: Action, job: Job | undefined) => ActionHandler | undefined,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
    opts: RunnerOptions = {},
  ) {
    const concurrency = opts.concurrency ?? 4;
    this.lanes = new Lanes((kind) => opts.laneConcurrency?.[kind] ?? concurrency);
    this.backoff = opts.backoffMs ?? [1_000, 5_000, 30_000, 120_000, 600_000];
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.now = opts.now ?? Date.now;
    this.guard = opts.guard ?? direct;
  }

  start(): void {
    this.stopped = false;
    this.started = true;
    this.kick();
  }

  /** Look for due actions now (after a job completes, an action finishes, or the journal takes writes again). */
  kick(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.dispatch(), 0);
  }

  /** Start every due action that has room in its lane; never waits for them (a slow lane holds only itself). */
  private dispatch(): void {
    if (this.stopped) return;
    let started = 0;
    if (this.guard.ok) {
      const due = this.guard.run('due actions', () => this.journal.dueActions(FETCH, { ids: this.inFlight, kinds: this.lanes.full() }), []);
      for (const a of due) {
        if (!this.lanes.tryAcquire(a.kind)) continue;
        started++;
        this.inFlight.add(a.id);
        void this.runOne(a).finally(() => {
          this.lanes.release(a.kind);
          this.inFlight.delete(a.id);
          this.kick();
        });
      }
    }
    this.metrics?.outboxPending.set(this.guard.run('count pending actions', () => this.journal.pendingActionCount(), 0));
    const next = this.guard.run('next action time', () => this.journal.nextActionAt(), null);
    if (this.inFlight.size === 0 && (next === null || this.stopped)) this.idleWaiters.splice(0).forEach((f) => f());
    if (this.stopped) return;
    // Woken early by kick() whenever an action finishes; otherwise look again when the next one is due (≤ 1 s).
    const wait = !this.guard.ok || started === 0 ? 1_000 : next === null ? 1_000 : Math.max(0, Math.min(1_000, next - this.now()));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.dispatch(), wait);
  }

  private async runOne(a: Action): Promise<void> {
    const job = this.guard.run('read job', () => this.journal.get(a.jobId), undefined);
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
        // Must throw when it cannot be journalled: acting on an unrecorded decision could duplicate an output.
        this.guard.runOrThrow('remember action payload', () => this.journal.updatePayload(a.id, payload));
        a.payload = payload;
      },
      log: this.log,
    };
    try {
      if (!handler) throw new PermanentActionError(`no handler for action '${a.kind}' (source '${job?.source}' provides none)`);
      const result = await handler(a.payload, ctx);
      // If this write fails the action stays pending and runs again later: every action is idempotent.
      this.guard.run('record action done', () => this.journal.actionDone(a, result.location), undefined);
      this.metrics?.actions.inc({ kind: a.kind, result: 'done' });
    } catch (err) {
      const attempt = a.attempts + 1;
      // An action that schedules its own retries decides when to give up (it throws PermanentActionError then).
      const own = err instanceof RetryLaterError;
      const permanent = err instanceof PermanentActionError || (!own && attempt >= this.maxAttempts);
      const message = (err as Error).message;
      const delay = own ? err.retryAfterMs : this.backoff[Math.min(attempt - 1, this.backoff.length - 1)]!;
      const retryAt = permanent ? null : this.now() + delay;
      this.guard.run('record action failure', () => this.journal.actionFailed(a, message, retryAt), undefined);
      this.metrics?.actions.inc({ kind: a.kind, result: permanent ? 'dead' : 'retry' });
      this.metrics?.errors.inc({ code: err instanceof MatchdError ? err.code : 'MATCHD_ACTION_FAILED' });
      this.log[permanent ? 'error' : 'warn']({ jobId: a.jobId, action: a.kind, attempt, err: message }, permanent ? 'action failed for good' : 'action failed; will retry');
    }
  }

  /** Resolves when no action is pending or running, or after `ms`. */
  async drain(ms: number): Promise<boolean> {
    const idle = () => this.inFlight.size === 0 && this.guard.run('next action time', () => this.journal.nextActionAt(), null) === null;
    if (idle()) return true;
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
