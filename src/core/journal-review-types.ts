/**
 * The shapes the web page's journal queries speak (journal-review.ts for SQLite, journal-pg/review.ts for PostgreSQL):
 * their own file, so that the two query modules need not import each other.
 */
import type { MatchdError } from './errors.ts';
import type { Job } from './journal-types.ts';
import type { Label } from './review.ts';

export type OutcomeFilter = 'matched' | 'error' | 'pending' | 'reviewed';

export interface JobFilter {
  rule?: string;
  source?: string;
  /** A band name (the job's outcome). */
  band?: string;
  outcome?: OutcomeFilter;
  /** created_at bounds, ms (from inclusive, to exclusive). */
  from?: number;
  to?: number;
}

export interface JobPage {
  jobs: Job[];
  /** Ids to page with: older (id < olderThan), newer (id > newerThan); undefined when there is no such page. */
  olderThan?: number;
  newerThan?: number;
}

export interface ActionView {
  jobId: number;
  seq: number;
  kind: string;
  state: 'pending' | 'done' | 'dead';
  attempts: number;
  lastError: string | null;
}

export type DecideResult = { ok: true; label: Label; actions: number } | { ok: false; error: MatchdError; label?: Label };
