/**
 * The journal: the only writer of state to disk. SQLite (better-sqlite3) in WAL mode with synchronous=FULL:
 * jobs (queued → running → done | failed) with leases and attempts, unique dedupe keys, and an outbox of
 * actions written in the same transaction as the result they act on. At-least-once inside; the actions are
 * idempotent, so what users see happens exactly once.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { V3_SCHEMA, migrate } from './journal-migrate.ts';
import { MATCHD_APPLICATION_ID, inspectJournalFile, openError, verifyJournal } from './journal-file.ts';

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  dedupe_key TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  rule TEXT NOT NULL,
  image_path TEXT NOT NULL,
  meta TEXT NOT NULL DEFAULT '{}',
  extra TEXT NOT NULL DEFAULT '{}',
  origin TEXT NOT NULL DEFAULT '{}',
  texts TEXT,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_until INTEGER,
  outcome TEXT,
  result TEXT,
  location TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_error TEXT,
  UNIQUE (job_id, seq)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, next_at);
CREATE TABLE IF NOT EXISTS plugin_state (
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (plugin, key)
);
${V3_SCHEMA}`;

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

export class Journal {
  private readonly db: Database.Database;
  /** Identifies this process's leases; leases of any other owner are dead after start-up (one daemon per journal). */
  readonly owner = `${process.pid}-${Date.now().toString(36)}`;

  /**
   * Open (or create) the journal. An existing file must be a sound matchd journal (quick_check at open); a missing
   * one is created; an empty one only with `init` (see journal-file.ts for why).
   */
  constructor(readonly file: string, private readonly now: () => number = Date.now, opts: { init?: boolean } = {}) {
    const memory = file === ':memory:';
    const kind = memory ? 'missing' : inspectJournalFile(file, opts);
    let db: Database.Database | undefined;
    try {
      if (!memory) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      db = new Database(file);
      if (kind === 'sqlite') verifyJournal(db, file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      migrate(db, SCHEMA);
      // Table statistics for the query planner (bounded work; SQLite's advice for long-lived connections): without
      // them a filter on several columns can pick the least selective index (the web page's job filters).
      db.pragma('optimize=0x10002');
      if (kind !== 'sqlite') db.pragma(`application_id = ${MATCHD_APPLICATION_ID}`);
    } catch (err) {
      db?.close();
      throw openError(err, file);
    }
    this.db = db;
  }

  /** The database, for the journal's query modules (journal-review.ts); nothing else writes through it. */
  get sql(): Database.Database {
    return this.db;
  }

  /** Journal a job unless its dedupe key is known; returns the (existing) job id. */
  enqueue(job: NewJob): { jobId: number; duplicate: boolean } {
    const t = this.now();
    const info = this.db
      .prepare(`INSERT INTO jobs (dedupe_key, source, rule, image_path, meta, extra, origin, texts, state, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`)
      .run(job.dedupeKey, job.source, job.rule, job.imagePath, JSON.stringify(job.meta ?? {}), JSON.stringify(job.extra ?? {}),
        JSON.stringify(job.origin ?? {}), job.texts ? JSON.stringify(job.texts) : null, t, t);
    if (info.changes === 1) return { jobId: Number(info.lastInsertRowid), duplicate: false };
    const row = this.db.prepare('SELECT id FROM jobs WHERE dedupe_key = ?').get(job.dedupeKey) as { id: number };
    return { jobId: row.id, duplicate: true };
  }

  isKnown(dedupeKey: string): boolean {
    return this.db.prepare('SELECT 1 FROM jobs WHERE dedupe_key = ?').get(dedupeKey) !== undefined;
  }

  get(jobId: number): Job | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow | undefined;
    return r ? toJob(r) : undefined;
  }

  /** Take up to `limit` queued jobs, oldest first, leased to this process for `leaseMs`. */
  lease(limit: number, leaseMs: number): Job[] {
    if (limit <= 0) return [];
    const rows = this.db
      .prepare(`UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, updated_at = ?
                WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?) RETURNING *`)
      .all(this.owner, this.now() + leaseMs, this.now(), limit) as JobRow[];
    return rows.map(toJob).sort((a, b) => a.id - b.id);
  }

  /**
   * Re-queue running jobs whose lease is dead: at start-up every lease of another owner (that process is gone),
   * later any lease past its time. Jobs already tried `maxAttempts` times come back as `abandoned` for the caller
   * to fail (a poison image must not crash the daemon forever).
   */
  recover(maxAttempts: number, startup = false): { requeued: number; abandoned: Job[] } {
    const dead = startup
      ? (this.db.prepare(`SELECT * FROM jobs WHERE state = 'running' AND (lease_owner IS NOT ? OR lease_until < ?)`).all(this.owner, this.now()) as JobRow[])
      : (this.db.prepare(`SELECT * FROM jobs WHERE state = 'running' AND lease_until < ?`).all(this.now()) as JobRow[]);
    const abandoned = dead.filter((r) => r.attempts >= maxAttempts).map(toJob);
    const requeue = dead.filter((r) => r.attempts < maxAttempts).map((r) => r.id);
    const stmt = this.db.prepare(`UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`);
    this.db.transaction(() => requeue.forEach((id) => stmt.run(this.now(), id)))();
    return { requeued: requeue.length, abandoned };
  }

  /** Record a job's outcome and the actions it causes, atomically. */
  complete(jobId: number, outcome: string, result: unknown, actions: { kind: string; payload: Record<string, unknown> }[], failed = false): void {
    const t = this.now();
    const insert = this.db.prepare(`INSERT INTO outbox (job_id, seq, kind, payload, state, next_at) VALUES (?, ?, ?, ?, 'pending', ?)`);
    this.db.transaction(() => {
      const info = this.db
        .prepare(`UPDATE jobs SET state = ?, outcome = ?, result = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
                  WHERE id = ? AND state IN ('running', 'queued')`)
        .run(failed ? 'failed' : 'done', outcome, JSON.stringify(result), t, jobId);
      if (info.changes !== 1) return; // completed already (a duplicate run after a lease expired): keep the first
      actions.forEach((a, seq) => insert.run(jobId, seq, a.kind, JSON.stringify(a.payload), t));
    })();
  }

  /**
   * Due actions, at most one per job (the lowest pending seq: a job's actions run in order), leaving out the ids
   * already running and the kinds whose lane is full (so a busy lane never hides due work of another).
   */
  dueActions(limit: number, skip: { ids?: Iterable<number>; kinds?: Iterable<string> } = {}): Action[] {
    const rows = this.db
      .prepare(`SELECT * FROM outbox o WHERE o.state = 'pending' AND o.next_at <= ?
                AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.job_id = o.job_id AND p.seq < o.seq AND p.state = 'pending')
                AND o.id NOT IN (SELECT value FROM json_each(?)) AND o.kind NOT IN (SELECT value FROM json_each(?))
                ORDER BY o.id LIMIT ?`)
      .all(this.now(), JSON.stringify([...(skip.ids ?? [])]), JSON.stringify([...(skip.kinds ?? [])]), limit) as {
        id: number; job_id: number; seq: number; kind: string; payload: string; attempts: number;
      }[];
    return rows.map((r) => ({ id: r.id, jobId: r.job_id, seq: r.seq, kind: r.kind, payload: JSON.parse(r.payload), attempts: r.attempts }));
  }

  /** Persist a decision (e.g. the destination name) before acting on it, so a retry makes the same one. */
  updatePayload(actionId: number, payload: Record<string, unknown>): void {
    this.db.prepare('UPDATE outbox SET payload = ? WHERE id = ?').run(JSON.stringify(payload), actionId);
  }

  /** Mark an action done; `location` records where the job's file now is (for later actions). */
  actionDone(action: Action, location?: string): void {
    this.db.transaction(() => {
      this.db.prepare(`UPDATE outbox SET state = 'done', attempts = attempts + 1, last_error = NULL WHERE id = ?`).run(action.id);
      if (location !== undefined) this.db.prepare('UPDATE jobs SET location = ?, updated_at = ? WHERE id = ?').run(location, this.now(), action.jobId);
    })();
  }

  /** Record a failed attempt: retried at `retryAt`, or dead (kept for inspection) when `retryAt` is null. */
  actionFailed(action: Action, error: string, retryAt: number | null): void {
    this.db
      .prepare(`UPDATE outbox SET attempts = attempts + 1, last_error = ?, state = ?, next_at = COALESCE(?, next_at) WHERE id = ?`)
      .run(error, retryAt === null ? 'dead' : 'pending', retryAt, action.id);
  }

  /**
   * Make finished or dead actions of `kind` due again (e.g. `matchd replay`): for one job, or for every job
   * finished since `sinceMs`. Returns how many. A running daemon picks them up within a second.
   */
  replay(kind: string, which: { jobId: number } | { sinceMs: number }): number {
    const t = this.now();
    if ('jobId' in which) {
      return this.db.prepare(`UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, last_error = NULL WHERE kind = ? AND job_id = ? AND state != 'pending'`)
        .run(t, kind, which.jobId).changes;
    }
    return this.db
      .prepare(`UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, last_error = NULL WHERE kind = ? AND state != 'pending'
                AND job_id IN (SELECT id FROM jobs WHERE updated_at >= ?)`)
      .run(t, kind, which.sinceMs).changes;
  }

  /** The actions of one job, in order, with their state (for status endpoints and tests). */
  actionsOf(jobId: number): (Action & { state: string; lastError: string | null })[] {
    const rows = this.db.prepare('SELECT * FROM outbox WHERE job_id = ? ORDER BY seq').all(jobId) as {
      id: number; job_id: number; seq: number; kind: string; payload: string; attempts: number; state: string; last_error: string | null;
    }[];
    return rows.map((r) => ({ id: r.id, jobId: r.job_id, seq: r.seq, kind: r.kind, payload: JSON.parse(r.payload), attempts: r.attempts, state: r.state, lastError: r.last_error }));
  }

  /** The job journalled under a dedupe key. */
  byDedupeKey(key: string): Job | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE dedupe_key = ?').get(key) as JobRow | undefined;
    return r ? toJob(r) : undefined;
  }

  /** The next time an action is due, or null when none is pending. */
  nextActionAt(): number | null {
    const r = this.db.prepare(`SELECT MIN(next_at) AS t FROM outbox WHERE state = 'pending'`).get() as { t: number | null };
    return r.t;
  }

  /** Jobs waiting to be scored: an index range over queued rows only (called on every submit). */
  queuedCount(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'`).get() as { n: number }).n;
  }

  /** Actions waiting to run (an index range, cheap enough for every runner tick). */
  pendingActionCount(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'`).get() as { n: number }).n;
  }

  /** Every count, for /healthz (scans the tables: not for hot paths). */
  counts(): Record<JobState | 'outboxPending' | 'outboxDead', number> {
    const c = { queued: 0, running: 0, done: 0, failed: 0, outboxPending: 0, outboxDead: 0 };
    for (const r of this.db.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as { state: JobState; n: number }[]) c[r.state] = r.n;
    for (const r of this.db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state').all() as { state: string; n: number }[]) {
      if (r.state === 'pending') c.outboxPending = r.n;
      if (r.state === 'dead') c.outboxDead = r.n;
    }
    return c;
  }

  pluginGet(plugin: string, key: string): unknown {
    const r = this.db.prepare('SELECT value FROM plugin_state WHERE plugin = ? AND key = ?').get(plugin, key) as { value: string } | undefined;
    return r ? JSON.parse(r.value) : undefined;
  }

  pluginSet(plugin: string, key: string, value: unknown): void {
    this.db.prepare('INSERT INTO plugin_state (plugin, key, value) VALUES (?, ?, ?) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value')
      .run(plugin, key, JSON.stringify(value));
  }

  /** Plugin state entries whose key starts with `prefix`, of one plugin or of all (e.g. disabled callback endpoints). */
  pluginEntries(prefix: string, plugin?: string): { plugin: string; key: string; value: unknown }[] {
    const rows = this.db
      .prepare(`SELECT plugin, key, value FROM plugin_state WHERE substr(key, 1, length(?)) = ? AND (? IS NULL OR plugin = ?) ORDER BY plugin, key`)
      .all(prefix, prefix, plugin ?? null, plugin ?? null) as { plugin: string; key: string; value: string }[];
    return rows.map((r) => ({ plugin: r.plugin, key: r.key, value: JSON.parse(r.value) }));
  }

  /** Remove one plugin state entry; true when it existed. */
  pluginDelete(plugin: string, key: string): boolean {
    return this.db.prepare('DELETE FROM plugin_state WHERE plugin = ? AND key = ?').run(plugin, key).changes === 1;
  }

  /**
   * Forget finished jobs older than `days` (their dedupe keys too), with their actions; at most `limit` per call
   * (a long backlog is pruned in short transactions). Jobs with an action still pending are kept.
   */
  prune(days: number, limit = Number.MAX_SAFE_INTEGER): number {
    const before = this.now() - days * 86_400_000;
    return this.db
      .prepare(`DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'failed') AND updated_at < ?
                AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = jobs.id AND o.state = 'pending') ORDER BY id LIMIT ?)`)
      .run(before, limit).changes;
  }

  /**
   * The health probe that ends a disk-full pause: first hand the WAL's space back (a truncating checkpoint: on a
   * small disk the WAL itself can be what filled it), then a tiny write (plugin '' cannot clash with a source name).
   */
  probeWrite(): void {
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      /* the write below decides */
    }
    this.db
      .prepare(`INSERT INTO plugin_state (plugin, key, value) VALUES ('', 'write-probe', ?) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value`)
      .run(String(this.now()));
  }

  /** Refresh the planner's statistics where the tables changed enough (cheap when nothing did). */
  optimize(): void {
    this.db.pragma('optimize');
  }

  /** Quick liveness probe for /healthz. */
  ping(): boolean {
    try {
      return (this.db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
