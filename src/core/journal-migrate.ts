/**
 * Journal schema versions (SQLite `user_version`) and the steps between them, run in one transaction at open:
 *   1  jobs, outbox, plugin_state
 *   2  jobs.origin (where the item came from) split off jobs.meta (now only the sender's meta), jobs.texts (the
 *      item's own texts; NULL = the rule's)
 *   3  labels (review decisions: the first per job wins; kept when the job is pruned, for `matchd calibrate`) with a
 *      trigger that follows the file when a decision moves it, and indexes for the web page's job filters
 * A new journal is created at the latest version; an older one is migrated; a newer one is refused (a rollback
 * must not misread columns it does not know).
 */
import type Database from 'better-sqlite3';
import { MatchdError } from './errors.ts';

export const JOURNAL_VERSION = 3;

/** Version 1 → 2: the old `meta` was the source's own details (webhook callers' meta nested under `client`). */
const V1_TO_V2 = `
ALTER TABLE jobs ADD COLUMN origin TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN texts TEXT;
UPDATE jobs SET
  origin = CASE WHEN json_valid(meta) THEN json_remove(meta, '$.client') ELSE '{}' END,
  meta = CASE WHEN json_valid(meta) AND json_type(meta, '$.client') = 'object' THEN json_extract(meta, '$.client') ELSE '{}' END;
`;

/**
 * Version 3's additions, also part of a new journal's schema. `labels` has no foreign key on purpose: a decision is
 * training data for calibration and outlives the job's retention. `reviewer` is the signed-in name ('local' without
 * a login); `image` follows the file (the trigger) so an export names where it is now.
 */
export const V3_SCHEMA = `
CREATE TABLE IF NOT EXISTS labels (
  job_id INTEGER PRIMARY KEY,
  rule TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject', 'band')),
  band TEXT NOT NULL,
  previous TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  at INTEGER NOT NULL,
  image TEXT NOT NULL,
  texts TEXT NOT NULL,
  results TEXT NOT NULL,
  decided_by TEXT
);
CREATE INDEX IF NOT EXISTS labels_by_at ON labels (at);
CREATE TRIGGER IF NOT EXISTS labels_follow_file AFTER UPDATE OF location ON jobs WHEN NEW.location IS NOT NULL
BEGIN
  UPDATE labels SET image = NEW.location WHERE job_id = NEW.id;
END;
CREATE INDEX IF NOT EXISTS jobs_by_outcome ON jobs (outcome, id);
CREATE INDEX IF NOT EXISTS jobs_by_rule ON jobs (rule, id);
CREATE INDEX IF NOT EXISTS jobs_by_source ON jobs (source, id);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
`;

/** Bring `db` to JOURNAL_VERSION; `schema` creates the latest tables (IF NOT EXISTS) for a new journal. */
export function migrate(db: Database.Database, schema: string): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > JOURNAL_VERSION) {
      throw new MatchdError('MATCHD_JOURNAL', `the journal is at schema version ${version}, newer than this matchd knows (${JOURNAL_VERSION}); use the matchd that wrote it`);
    }
    if (version === 0) db.exec(schema);
    if (version === 1) db.exec(V1_TO_V2);
    if (version >= 1 && version < 3) db.exec(V3_SCHEMA);
    if (version !== JOURNAL_VERSION) db.pragma(`user_version = ${JOURNAL_VERSION}`);
  })();
}
