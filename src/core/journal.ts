/**
 * The journal: the only writer of state to disk. SQLite (better-sqlite3) in WAL mode with synchronous=FULL:
 * jobs (queued → running → done | failed) with leases and attempts, unique dedupe keys, and an outbox of
 * actions written in the same transaction as the result they act on. At-least-once inside; the actions are
 * idempotent, so what users see happens exactly once.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { JOURNAL_SCHEMA, migrate } from './journal-migrate.ts';
import { MATCHD_APPLICATION_ID, inspectJournalFile, openError, verifyJournal } from './journal-file.ts';
import type { JournalBackend } from './journal-types.ts';
import { prepareStatements, type Statements } from './journal-statements.ts';
import { toJob, type Action, type Job, type JobRow, type JobState, type NewJob } from './journal-types.ts';

export { toJob, type Action, type Job, type JobExtra, type JobRow, type JobState, type NewJob } from './journal-types.ts';

export class Journal {
  readonly backend: JournalBackend = 'sqlite';
  private readonly db: Database.Database;
  /** Every statement of the hot paths, prepared at open (journal-statements.ts). */
  private readonly st: Statements;
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
    let st: Statements;
    try {
      if (!memory) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      db = new Database(file);
      if (kind === 'sqlite') verifyJournal(db, file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      migrate(db, JOURNAL_SCHEMA);
      // Table statistics for the query planner (bounded work; SQLite's advice for long-lived connections): without
      // them a filter on several columns can pick the least selective index (the web page's job filters).
      db.pragma('optimize=0x10002');
      if (kind !== 'sqlite') db.pragma(`application_id = ${MATCHD_APPLICATION_ID}`);
      st = prepareStatements(db);
    } catch (err) {
      db?.close();
      throw openError(err, file);
    }
    this.db = db;
    this.st = st;
  }

  /** The database, for the journal's query modules (journal-review.ts); nothing else writes through it. */
  get sql(): Database.Database {
    return this.db;
  }

  /** Journal a job unless its dedupe key is known; returns the (existing) job id. */
  enqueue(job: NewJob): { jobId: number; duplicate: boolean } {
    const t = this.now();
    const info = this.st.insertJob.run(job.dedupeKey, job.source, job.rule, job.imagePath, JSON.stringify(job.meta ?? {}), JSON.stringify(job.extra ?? {}),
      JSON.stringify(job.origin ?? {}), job.texts ? JSON.stringify(job.texts) : null, t, t);
    if (info.changes === 1) return { jobId: Number(info.lastInsertRowid), duplicate: false };
    const row = this.st.jobIdByKey.get(job.dedupeKey) as { id: number };
    return { jobId: row.id, duplicate: true };
  }

  isKnown(dedupeKey: string): boolean {
    return this.st.jobKnown.get(dedupeKey) !== undefined;
  }

  get(jobId: number): Job | undefined {
    const r = this.st.job.get(jobId) as JobRow | undefined;
    return r ? toJob(r) : undefined;
  }

  /** Take up to `limit` queued jobs, oldest first, leased to this process for `leaseMs`. */
  lease(limit: number, leaseMs: number): Job[] {
    if (limit <= 0) return [];
    const rows = this.st.lease.all(this.owner, this.now() + leaseMs, this.now(), limit) as JobRow[];
    return rows.map(toJob).sort((a, b) => a.id - b.id);
  }

  /**
   * Re-queue running jobs whose lease is dead: at start-up every lease of another owner (that process is gone),
   * later any lease past its time. Jobs already tried `maxAttempts` times come back as `abandoned` for the caller
   * to fail (a poison image must not crash the daemon forever).
   */
  recover(maxAttempts: number, startup = false): { requeued: number; abandoned: Job[] } {
    const dead = (startup ? this.st.deadAtStartup.all(this.owner, this.now()) : this.st.deadLeases.all(this.now())) as JobRow[];
    const abandoned = dead.filter((r) => r.attempts >= maxAttempts).map(toJob);
    const requeue = dead.filter((r) => r.attempts < maxAttempts).map((r) => r.id);
    if (requeue.length) this.db.transaction(() => requeue.forEach((id) => this.st.requeue.run(this.now(), id)))();
    return { requeued: requeue.length, abandoned };
  }

  /** Record a job's outcome and the actions it causes, atomically. */
  complete(jobId: number, outcome: string, result: unknown, actions: { kind: string; payload: Record<string, unknown> }[], failed = false): void {
    const t = this.now();
    this.db.transaction(() => {
      const info = this.st.completeJob.run(failed ? 'failed' : 'done', outcome, JSON.stringify(result), t, jobId);
      if (info.changes !== 1) return; // completed already (a duplicate run after a lease expired): keep the first
      actions.forEach((a, seq) => this.st.insertAction.run(jobId, seq, a.kind, JSON.stringify(a.payload), t));
    })();
  }

  /**
   * Due actions, at most one per job (the lowest pending seq: a job's actions run in order), leaving out the ids
   * already running and the kinds whose lane is full (so a busy lane never hides due work of another).
   */
  dueActions(limit: number, skip: { ids?: Iterable<number>; kinds?: Iterable<string> } = {}): Action[] {
    const rows = this.st.dueActions.all(this.now(), JSON.stringify([...(skip.ids ?? [])]), JSON.stringify([...(skip.kinds ?? [])]), limit) as {
      id: number; job_id: number; seq: number; kind: string; payload: string; attempts: number;
    }[];
    return rows.map((r) => ({ id: r.id, jobId: r.job_id, seq: r.seq, kind: r.kind, payload: JSON.parse(r.payload), attempts: r.attempts }));
  }

  /** Persist a decision (e.g. the destination name) before acting on it, so a retry makes the same one. */
  updatePayload(actionId: number, payload: Record<string, unknown>): void {
    this.st.updatePayload.run(JSON.stringify(payload), actionId);
  }

  /** Mark an action done; `location` records where the job's file now is (for later actions). */
  actionDone(action: Action, location?: string): void {
    this.db.transaction(() => {
      this.st.actionDone.run(action.id);
      if (location !== undefined) this.st.setLocation.run(location, this.now(), action.jobId);
    })();
  }

  /** Record a failed attempt: retried at `retryAt`, or dead (kept for inspection) when `retryAt` is null. */
  actionFailed(action: Action, error: string, retryAt: number | null): void {
    this.st.actionFailed.run(error, retryAt === null ? 'dead' : 'pending', retryAt, action.id);
  }

  /**
   * Make finished or dead actions of `kind` due again (e.g. `matchd replay`): for one job, for every job finished
   * since `sinceMs`, or (with `dead`) for every job; `dead`: only dead-lettered ones, not those done. Returns how
   * many. A running daemon picks them up within a second.
   */
  replay(kind: string, which: { jobId: number } | { sinceMs: number } | { all: true }, opts: { dead?: boolean } = {}): number {
    const t = this.now();
    // Prepared per call, unlike the hot paths' statements: six variants, run once per `matchd replay`.
    const states = opts.dead ? `state = 'dead'` : `state != 'pending'`;
    const set = `UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, last_error = NULL WHERE kind = ? AND ${states}`;
    if ('jobId' in which) return this.db.prepare(`${set} AND job_id = ?`).run(t, kind, which.jobId).changes;
    if ('sinceMs' in which) return this.db.prepare(`${set} AND job_id IN (SELECT id FROM jobs WHERE updated_at >= ?)`).run(t, kind, which.sinceMs).changes;
    return this.db.prepare(set).run(t, kind).changes;
  }

  /** The actions of one job, in order, with their state (for status endpoints and tests). */
  actionsOf(jobId: number): (Action & { state: string; lastError: string | null })[] {
    const rows = this.st.actionsOf.all(jobId) as {
      id: number; job_id: number; seq: number; kind: string; payload: string; attempts: number; state: string; last_error: string | null;
    }[];
    return rows.map((r) => ({ id: r.id, jobId: r.job_id, seq: r.seq, kind: r.kind, payload: JSON.parse(r.payload), attempts: r.attempts, state: r.state, lastError: r.last_error }));
  }

  /** The job journalled under a dedupe key (a webhook caller repeating a request gets the original job). */
  byDedupeKey(key: string): Job | undefined {
    const r = this.st.jobByKey.get(key) as JobRow | undefined;
    return r ? toJob(r) : undefined;
  }

  /** The next time an action is due, or null when none is pending. */
  nextActionAt(): number | null {
    return (this.st.nextActionAt.get() as { t: number | null }).t;
  }

  /** Jobs waiting to be scored: an index range over queued rows only (called on every submit). */
  queuedCount(): number {
    return (this.st.queuedCount.get() as { n: number }).n;
  }

  /** Actions waiting to run (an index range, cheap enough for every runner tick). */
  pendingActionCount(): number {
    return (this.st.pendingActions.get() as { n: number }).n;
  }

  /** Every count, for /healthz (scans the tables: not for hot paths). */
  counts(): Record<JobState | 'outboxPending' | 'outboxDead', number> {
    const c = { queued: 0, running: 0, done: 0, failed: 0, outboxPending: 0, outboxDead: 0 };
    for (const r of this.st.jobCounts.all() as { state: JobState; n: number }[]) c[r.state] = r.n;
    for (const r of this.st.outboxCounts.all() as { state: string; n: number }[]) {
      if (r.state === 'pending') c.outboxPending = r.n;
      if (r.state === 'dead') c.outboxDead = r.n;
    }
    return c;
  }

  pluginGet(plugin: string, key: string): unknown {
    const r = this.st.pluginGet.get(plugin, key) as { value: string } | undefined;
    return r ? JSON.parse(r.value) : undefined;
  }

  pluginSet(plugin: string, key: string, value: unknown): void {
    this.st.pluginSet.run(plugin, key, JSON.stringify(value));
  }

  /** Plugin state entries whose key starts with `prefix`, of one plugin or of all (e.g. disabled callback endpoints). */
  pluginEntries(prefix: string, plugin?: string): { plugin: string; key: string; value: unknown }[] {
    const rows = this.st.pluginEntries.all(prefix, prefix, plugin ?? null, plugin ?? null) as { plugin: string; key: string; value: string }[];
    return rows.map((r) => ({ plugin: r.plugin, key: r.key, value: JSON.parse(r.value) }));
  }

  /** Remove one plugin state entry; true when it existed. */
  pluginDelete(plugin: string, key: string): boolean {
    return this.st.pluginDelete.run(plugin, key).changes === 1;
  }

  /**
   * Forget finished jobs older than `days` (their dedupe keys too), with their actions; at most `limit` per call
   * (a long backlog is pruned in short transactions). Jobs with an action still pending are kept.
   */
  prune(days: number, limit = Number.MAX_SAFE_INTEGER): number {
    return this.st.prune.run(this.now() - days * 86_400_000, limit).changes;
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
    this.st.pluginSet.run('', 'write-probe', String(this.now()));
  }

  /** Refresh the planner's statistics where the tables changed enough (cheap when nothing did). */
  optimize(): void {
    this.db.pragma('optimize');
  }

  /** Quick liveness probe for /healthz. */
  ping(): boolean {
    try {
      return (this.st.ping.get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
