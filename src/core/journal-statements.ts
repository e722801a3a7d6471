/**
 * The SQLite journal's statements, prepared once when it opens and kept (better-sqlite3's idiom: a statement is an
 * object you keep). Preparing parses and plans the SQL, which on the hot paths — submit, lease, result, each action —
 * costs about as much as running it. Statements whose shape depends on the call (the web page's filters) are built
 * where they are used (journal-review.ts).
 */
import type Database from 'better-sqlite3';

const SQL = {
  // jobs
  insertJob: `INSERT INTO jobs (dedupe_key, source, rule, image_path, meta, extra, origin, texts, state, created_at, updated_at)
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
  jobIdByKey: 'SELECT id FROM jobs WHERE dedupe_key = ?',
  jobByKey: 'SELECT * FROM jobs WHERE dedupe_key = ?',
  jobKnown: 'SELECT 1 FROM jobs WHERE dedupe_key = ?',
  job: 'SELECT * FROM jobs WHERE id = ?',
  lease: `UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, updated_at = ?
              WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?) RETURNING *`,
  deadAtStartup: `SELECT * FROM jobs WHERE state = 'running' AND (lease_owner IS NOT ? OR lease_until < ?)`,
  deadLeases: `SELECT * FROM jobs WHERE state = 'running' AND lease_until < ?`,
  requeue: `UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`,
  completeJob: `UPDATE jobs SET state = ?, outcome = ?, result = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
                    WHERE id = ? AND state IN ('running', 'queued')`,
  setLocation: 'UPDATE jobs SET location = ?, updated_at = ? WHERE id = ?',
  queuedCount: `SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'`,
  prune: `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'failed') AND updated_at < ?
              AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = jobs.id AND o.state = 'pending') ORDER BY id LIMIT ?)`,
  // outbox
  insertAction: `INSERT INTO outbox (job_id, seq, kind, payload, state, next_at) VALUES (?, ?, ?, ?, 'pending', ?)`,
  dueActions: `SELECT * FROM outbox o WHERE o.state = 'pending' AND o.next_at <= ?
                   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.job_id = o.job_id AND p.seq < o.seq AND p.state = 'pending')
                   AND o.id NOT IN (SELECT value FROM json_each(?)) AND o.kind NOT IN (SELECT value FROM json_each(?))
                   ORDER BY o.id LIMIT ?`,
  updatePayload: 'UPDATE outbox SET payload = ? WHERE id = ?',
  actionDone: `UPDATE outbox SET state = 'done', attempts = attempts + 1, last_error = NULL WHERE id = ?`,
  actionFailed: `UPDATE outbox SET attempts = attempts + 1, last_error = ?, state = ?, next_at = COALESCE(?, next_at) WHERE id = ?`,
  actionsOf: 'SELECT * FROM outbox WHERE job_id = ? ORDER BY seq',
  nextActionAt: `SELECT MIN(next_at) AS t FROM outbox WHERE state = 'pending'`,
  pendingActions: `SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'`,
  jobCounts: 'SELECT state, COUNT(*) AS n FROM jobs GROUP BY state',
  outboxCounts: 'SELECT state, COUNT(*) AS n FROM outbox GROUP BY state',
  // plugin state
  pluginGet: 'SELECT value FROM plugin_state WHERE plugin = ? AND key = ?',
  pluginSet: 'INSERT INTO plugin_state (plugin, key, value) VALUES (?, ?, ?) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value',
  pluginEntries: `SELECT plugin, key, value FROM plugin_state WHERE substr(key, 1, length(?)) = ? AND (? IS NULL OR plugin = ?) ORDER BY plugin, key`,
  pluginDelete: 'DELETE FROM plugin_state WHERE plugin = ? AND key = ?',
  ping: 'SELECT 1 AS ok',
};

export type Statements = { readonly [K in keyof typeof SQL]: Database.Statement };

export function prepareStatements(db: Database.Database): Statements {
  return Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as unknown as Statements;
}
