/**
 * Journal schema versions (SQLite `user_version`) and the steps between them, run in one transaction at open:
 *   1  jobs, outbox, plugin_state
 *   2  jobs.origin (where the item came from) split off jobs.meta (now only the sender's meta), jobs.texts (the
 *      item's own texts; NULL = the rule's)
 * A new journal is created at the latest version; an older one is migrated; a newer one is refused (a rollback
 * must not misread columns it does not know).
 */
import type Database from 'better-sqlite3';
import { MatchdError } from './errors.ts';

export const JOURNAL_VERSION = 2;

/** Version 1 → 2: the old `meta` was the source's own details (webhook callers' meta nested under `client`). */
const V1_TO_V2 = `
ALTER TABLE jobs ADD COLUMN origin TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN texts TEXT;
UPDATE jobs SET
  origin = CASE WHEN json_valid(meta) THEN json_remove(meta, '$.client') ELSE '{}' END,
  meta = CASE WHEN json_valid(meta) AND json_type(meta, '$.client') = 'object' THEN json_extract(meta, '$.client') ELSE '{}' END;
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
    if (version !== JOURNAL_VERSION) db.pragma(`user_version = ${JOURNAL_VERSION}`);
  })();
}
