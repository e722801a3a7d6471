/** What the journal stores, as the code sees it (both backends), and how a SQLite or PostgreSQL row becomes it. */
export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface Job {
  id: number;
  dedupeKey: string;
  source: string;
  rule: string;
  imagePath: string;
  /** The item's meta as its sender gave it (echoed in the result document). */
  meta: Record<string, unknown>;
  /** Where the item came from, as its source describes it (path, object key, caller identity). */
  origin: Record<string, unknown>;
  /** The item's own texts; null: the rule's. */
  texts: string[] | null;
  /** Per-job extras from the source: actions added to the rule's, and whether the image file is a temporary copy. */
  extra: JobExtra;
  state: JobState;
  attempts: number;
  outcome: string | null;
  result: unknown;
  location: string | null;
  createdAt: number;
}

export interface Action {
  id: number;
  jobId: number;
  seq: number;
  kind: string;
  payload: Record<string, unknown>;
  attempts: number;
}

export interface JobExtra {
  actions?: { kind: string; options?: Record<string, unknown> }[];
  temporary?: boolean;
  /** Known unusable at submit time: goes straight to the `error` outcome with this code. */
  failed?: { code: string; message: string };
  /** Files that travel with the image (its texts companion): moved or copied along with it. */
  companions?: string[];
}

export interface NewJob {
  dedupeKey: string;
  source: string;
  rule: string;
  imagePath: string;
  meta?: Record<string, unknown>;
  origin?: Record<string, unknown>;
  texts?: string[];
  extra?: JobExtra;
}


/** A jobs row as SQLite returns it (journal-review.ts reads them too). */
export interface JobRow {
  id: number; dedupe_key: string; source: string; rule: string; image_path: string; meta: string; extra: string; origin: string; texts: string | null; state: JobState;
  attempts: number; outcome: string | null; result: string | null; location: string | null; created_at: number;
}

export function toJob(r: JobRow): Job {
  return {
    id: r.id, dedupeKey: r.dedupe_key, source: r.source, rule: r.rule, imagePath: r.image_path, meta: JSON.parse(r.meta), extra: JSON.parse(r.extra),
    origin: JSON.parse(r.origin), texts: r.texts === null ? null : (JSON.parse(r.texts) as string[]),
    state: r.state, attempts: r.attempts, outcome: r.outcome, result: r.result ? JSON.parse(r.result) : null,
    location: r.location, createdAt: r.created_at,
  };
}

/** Which journal a daemon runs on. */
export type JournalBackend = 'sqlite' | 'postgres';
