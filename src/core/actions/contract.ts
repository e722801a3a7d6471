/**
 * The action contract every action kind follows, the core's (move, copy, sidecar...) and the plugins' (callback, S3
 * tag...): a handler gets the journalled payload and a context, does idempotent work and returns where the file went.
 * A failure's code tells the runner what to do next: MATCHD_ACTION_PERMANENT goes straight to dead,
 * MATCHD_ACTION_RETRY_LATER is retried after the delay in `retryAfterMs`, anything else after the runner's backoff.
 */
import { MatchdError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** What an action may read and record while it runs. */
export interface ActionContext {
  jobId: number;
  /** The job as journalled: source, rule, the sender's meta, the source's origin, outcome and the result document. */
  job: {
    source: string; rule: string; imagePath: string; meta: Record<string, unknown>; origin: Record<string, unknown>;
    outcome: string | null; result: Record<string, unknown> | null; createdAt: number;
  };
  /** 1 for the first try. */
  attempt: number;
  /** The clock the runner schedules with (a fake one in tests). */
  now(): number;
  /** Where the job's file is now (after an earlier move/copy), else its original path. */
  location: string;
  /** Persist a decision (like the destination name) before acting, so a retry makes the same one. */
  remember(payload: Record<string, unknown>): void;
  log: Logger;
}

/** An action's result: the file's new location when it moved or copied it. */
export type ActionResult = { location?: string };

/** One action kind: the journalled payload (the rule's options plus what the action remembered) and its context. */
export type ActionHandler = (payload: Record<string, unknown>, ctx: ActionContext) => Promise<ActionResult>;

/** A failure that retrying cannot fix (MATCHD_ACTION_PERMANENT: the action goes straight to dead). */
export class PermanentActionError extends MatchdError {
  constructor(message: string) {
    super('MATCHD_ACTION_PERMANENT', message);
  }
}

/**
 * A failure to retry after a delay the action chose itself (its own schedule, or a server's Retry-After);
 * MATCHD_ACTION_RETRY_LATER, the delay also in `details.retryAfterMs`.
 */
export class RetryLaterError extends MatchdError {
  constructor(message: string, readonly retryAfterMs: number) {
    super('MATCHD_ACTION_RETRY_LATER', message, { retryAfterMs });
  }
}

/**
 * How the runner reads a failure: dead now (`permanent`), retry after the action's own delay (`retryAfterMs`), or
 * neither: retry on the runner's backoff until its attempts run out.
 */
export function failureKind(err: unknown): { permanent: boolean; retryAfterMs: number | null } {
  if (err instanceof MatchdError && err.code === 'MATCHD_ACTION_PERMANENT') return { permanent: true, retryAfterMs: null };
  const ms = err instanceof MatchdError && err.code === 'MATCHD_ACTION_RETRY_LATER' ? err.details?.retryAfterMs : undefined;
  return { permanent: false, retryAfterMs: typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : null };
}
