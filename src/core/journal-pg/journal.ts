/**
 * The journal on PostgreSQL, shared by several daemons: the same calls and semantics as the SQLite journal
 * (journal.ts; the type JournalApi holds the two together), written for many nodes at once:
 *  - leases are taken with `FOR UPDATE SKIP LOCKED` (two workers never take the same job, neither waits for the
 *    other); a lease is dead when its time is up or when the node holding it stops heartbeating (a worker killed
 *    with -9 hands its jobs back after `nodeTimeoutMs`, not after the whole lease);
 *  - dedupe keys are unique across every node (two intake nodes polling one bucket journal each object once);
 *  - the result and its actions are one statement; actions are claimed by one node at a time (SKIP LOCKED again),
 *    and a claim dies with its node the way a lease does;
 *  - lease, claim and heartbeat times are the database's clock, so the nodes' clocks need not agree.
 * Every call is synchronous (bridge.ts says why and how) and one round trip unless noted.
 */
import os from 'node:os';
import { MatchdError } from '../errors.ts';
import type { JournalApi, NodeView } from '../journal-api.ts';
import { toJob, type Action, type Job, type JobRow, type JobState, type NewJob } from '../journal.ts';
import { PgBridge, PgCallError } from './bridge.ts';
import { MIGRATION_LOCK, STEPS, migrationPlan } from './schema.ts';
import { NOW, aliveOwner, inTransaction, redactUrl } from './sql.ts';

export interface PgJournalOptions {
  url: string;
  /** This node's name (unique among running nodes) and role, for the node registry. */
  node: { name: string; role: string };
  now?: () => number;
  /** A lease taken for abandoned jobs while they are failed (the daemon's journal.leaseMs). */
  leaseMs: number;
  /** A node silent this long is dead: its leases and claims go to others. */
  nodeTimeoutMs: number;
  /** How long an action stays claimed by a live node before another may take it. */
  claimMs?: number;
  callTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Jobs were queued by some node (LISTEN matchd_queued): a worker leases at once instead of at its next tick. */
  onQueued?: () => void;
  /** The database answers again after being unreachable. */
  onReconnected?: () => void;
}

type OutboxRow = { id: number; job_id: number; seq: number; kind: string; payload: string; attempts: number; state: string; last_error: string | null };

const QUEUED_CHANNEL = 'matchd_queued';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class PgJournal implements JournalApi {
  readonly backend = 'postgres' as const;
  readonly owner: string;
  /** Where the journal is, for messages (no password). */
  readonly where: string;
  readonly bridge: PgBridge;
  private readonly now: () => number;
  private readonly dead: number;
  private readonly claimMs: number;

  constructor(private readonly opts: PgJournalOptions) {
    this.now = opts.now ?? Date.now;
    this.where = redactUrl(opts.url);
    this.dead = opts.nodeTimeoutMs;
    this.claimMs = opts.claimMs ?? Math.max(opts.leaseMs, 60_000);
    this.owner = `${opts.node.name}/${process.pid}-${Date.now().toString(36)}`;
    this.bridge = new PgBridge({
      url: opts.url,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      statementTimeoutMs: 30_000,
      callTimeoutMs: opts.callTimeoutMs ?? 35_000,
      channels: opts.onQueued ? [QUEUED_CHANNEL] : [],
      applicationName: `matchd ${opts.node.role} ${opts.node.name}`.slice(0, 63),
      onEvent: (e) => {
        if (e.type === 'notify' && e.channel === QUEUED_CHANNEL) opts.onQueued?.();
        if (e.type === 'up') opts.onReconnected?.();
      },
    });
    try {
      this.migrate();
      this.register();
    } catch (err) {
      this.bridge.close();
      if (err instanceof MatchdError) throw err;
      const code = (err as PgCallError).fault === 'unreachable' ? 'MATCHD_JOURNAL_UNREACHABLE' : 'MATCHD_JOURNAL';
      throw new MatchdError(code, `cannot open the journal at ${this.where}: ${(err as Error).message} (journal.url)`, { where: this.where });
    }
  }

  private q<R = Record<string, unknown>>(sql: string, params: unknown[] = []): R[] {
    return this.bridge.query<R>(sql, params).rows;
  }

  /** Bring the database to PG_SCHEMA_VERSION, once, however many nodes start together (schema.ts). */
  private migrate(): void {
    inTransaction(this.bridge, (q) => {
      q('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const tables = q<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`).rows.map((r) => r.name);
      const version = tables.includes('matchd_meta')
        ? Number(q<{ value: string }>(`SELECT value FROM matchd_meta WHERE key = 'schema_version'`).rows[0]?.value ?? 0)
        : null;
      const { steps } = migrationPlan(version, tables, this.where);
      for (const v of steps) q(STEPS[v]!);
      if (steps.length) q(`INSERT INTO matchd_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(steps.at(-1))]);
    });
  }

  /**
   * Enter this process in the node registry under its name. A name held by a live node is refused, unless that
   * node is an earlier process on this host that has died (restarted after a crash): its leases go at once.
   */
  private register(): void {
    const { name, role } = this.opts.node;
    inTransaction(this.bridge, (q) => {
      const other = q<{ owner: string; host: string; pid: number; started_at: number; seen_at: number; now: number; stopped_at: number | null }>(
        `SELECT owner, host, pid, started_at, seen_at, stopped_at, ${NOW} AS now FROM nodes WHERE name = $1 FOR UPDATE`, [name]).rows[0];
      if (other && other.stopped_at === null && other.seen_at >= other.now - this.dead) {
        const crashedHere = other.host === os.hostname() && !pidAlive(other.pid);
        if (!crashedHere) {
          throw new MatchdError(
            'MATCHD_JOURNAL_LOCKED',
            `node name '${name}' is in use by another running matchd (pid ${other.pid} on ${other.host}, started ${new Date(other.started_at).toISOString()}, seen ${other.now - other.seen_at} ms ago) on the journal at ${this.where}; give each node its own name (--node NAME or journal.node)`,
            { node: name, pid: other.pid, host: other.host },
          );
        }
      }
      q(`INSERT INTO nodes (name, owner, role, host, pid, started_at, seen_at) VALUES ($1, $2, $3, $4, $5, $6, ${NOW})
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, role = excluded.role, host = excluded.host, pid = excluded.pid,
           started_at = excluded.started_at, seen_at = excluded.seen_at, stopped_at = NULL`,
        [name, this.owner, role, os.hostname(), process.pid, Date.now()]);
    });
  }

  /** Say this node is alive (every second); false when another process has taken over its name. */
  heartbeat(): boolean {
    return this.bridge.query(`UPDATE nodes SET seen_at = ${NOW} WHERE owner = $1 AND stopped_at IS NULL`, [this.owner]).rowCount === 1;
  }

  enqueue(job: NewJob): { jobId: number; duplicate: boolean } {
    const t = this.now();
    const rows = this.q<{ id: number }>(
      `WITH ins AS (
         INSERT INTO jobs (dedupe_key, source, rule, image_path, meta, extra, origin, texts, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $9) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id)
       SELECT id, pg_notify('${QUEUED_CHANNEL}', '') FROM ins`,
      [job.dedupeKey, job.source, job.rule, job.imagePath, JSON.stringify(job.meta ?? {}), JSON.stringify(job.extra ?? {}),
        JSON.stringify(job.origin ?? {}), job.texts ? JSON.stringify(job.texts) : null, t]);
    if (rows[0]) return { jobId: rows[0].id, duplicate: false };
    // Known already (possibly committed by another node a moment ago: this statement sees it now).
    const row = this.q<{ id: number }>('SELECT id FROM jobs WHERE dedupe_key = $1', [job.dedupeKey])[0];
    if (!row) throw new PgCallError(`job ${job.dedupeKey} was neither inserted nor found`, undefined, undefined);
    return { jobId: row.id, duplicate: true };
  }

  isKnown(dedupeKey: string): boolean {
    return this.q('SELECT 1 FROM jobs WHERE dedupe_key = $1', [dedupeKey]).length > 0;
  }

  get(jobId: number): Job | undefined {
    const r = this.q<JobRow>('SELECT * FROM jobs WHERE id = $1', [jobId])[0];
    return r ? toJob(r) : undefined;
  }

  /** Take up to `limit` queued jobs, oldest first; rows another node is taking right now are skipped, not waited for. */
  lease(limit: number, leaseMs: number): Job[] {
    if (limit <= 0) return [];
    const rows = this.q<JobRow>(
      `WITH next AS (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
       UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $2, lease_until = ${NOW} + $3, updated_at = $4
       FROM next WHERE jobs.id = next.id RETURNING jobs.*`,
      [limit, this.owner, leaseMs, this.now()]);
    return rows.map(toJob).sort((a, b) => a.id - b.id);
  }

  /**
   * Re-queue running jobs whose lease is dead (past its time, or its node silent or stopped) — at start-up and
   * later alike: other nodes may be alive. Jobs tried `maxAttempts` times are leased to this node and returned
   * for it to fail, so that exactly one node fails each.
   */
  recover(maxAttempts: number, _startup = false): { requeued: number; abandoned: Job[] } {
    const r = this.q<{ requeued: number; abandoned: JobRow[] | null }>(
      `WITH dead AS (
         SELECT id, attempts FROM jobs j WHERE state = 'running' AND (lease_until < ${NOW} OR NOT ${aliveOwner('j.lease_owner', '$1')})
         FOR UPDATE OF j SKIP LOCKED),
       requeued AS (
         UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = $2
         FROM dead WHERE jobs.id = dead.id AND dead.attempts < $3 RETURNING jobs.id),
       abandoned AS (
         UPDATE jobs SET lease_owner = $4, lease_until = ${NOW} + $5, updated_at = $2
         FROM dead WHERE jobs.id = dead.id AND dead.attempts >= $3 RETURNING jobs.*)
       SELECT (SELECT count(*)::int FROM requeued) AS requeued, (SELECT json_agg(a ORDER BY a.id) FROM abandoned a) AS abandoned,
         (SELECT CASE WHEN count(*) > 0 THEN pg_notify('${QUEUED_CHANNEL}', '') END FROM requeued) AS notified`,
      [this.dead, this.now(), maxAttempts, this.owner, this.opts.leaseMs])[0]!;
    return { requeued: r.requeued, abandoned: (r.abandoned ?? []).map(toJob) };
  }

  /** Record a job's outcome and the actions it causes in one statement; a job completed already keeps its first result. */
  complete(jobId: number, outcome: string, result: unknown, actions: { kind: string; payload: Record<string, unknown> }[], failed = false): void {
    const t = this.now();
    this.q(
      `WITH done AS (
         UPDATE jobs SET state = $2, outcome = $3, result = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5
         WHERE id = $1 AND state IN ('running', 'queued') RETURNING id)
       INSERT INTO outbox (job_id, seq, kind, payload, state, next_at)
       SELECT done.id, a.seq - 1, a.kind, a.payload, 'pending', $5 FROM done, unnest($6::text[], $7::text[]) WITH ORDINALITY AS a(kind, payload, seq)`,
      [jobId, failed ? 'failed' : 'done', outcome, JSON.stringify(result), t, actions.map((a) => a.kind), actions.map((a) => JSON.stringify(a.payload))]);
  }

  /**
   * Due actions, at most one per job (its lowest pending seq), claimed for this node: leaving out the ids running
   * here, the kinds whose lane is full, and actions a live node has claimed.
   */
  dueActions(limit: number, skip: { ids?: Iterable<number>; kinds?: Iterable<string> } = {}): Action[] {
    const rows = this.q<OutboxRow>(
      `WITH due AS (
         SELECT o.id FROM outbox o
         WHERE o.state = 'pending' AND o.next_at <= $1
           AND (o.claim_owner IS NULL OR o.claim_owner = $2 OR o.claim_until < ${NOW} OR NOT ${aliveOwner('o.claim_owner', '$3')})
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.job_id = o.job_id AND p.seq < o.seq AND p.state = 'pending')
           AND NOT (o.id = ANY($4::bigint[])) AND NOT (o.kind = ANY($5::text[]))
         ORDER BY o.id LIMIT $6 FOR UPDATE OF o SKIP LOCKED)
       UPDATE outbox SET claim_owner = $2, claim_until = ${NOW} + $7 FROM due WHERE outbox.id = due.id
       RETURNING outbox.id, outbox.job_id, outbox.seq, outbox.kind, outbox.payload, outbox.attempts`,
      [this.now(), this.owner, this.dead, [...(skip.ids ?? [])], [...(skip.kinds ?? [])], limit, this.claimMs]);
    return rows.map((r) => ({ id: r.id, jobId: r.job_id, seq: r.seq, kind: r.kind, payload: JSON.parse(r.payload), attempts: r.attempts })).sort((a, b) => a.id - b.id);
  }

  updatePayload(actionId: number, payload: Record<string, unknown>): void {
    this.q('UPDATE outbox SET payload = $1 WHERE id = $2', [JSON.stringify(payload), actionId]);
  }

  actionDone(action: Action, location?: string): void {
    const done = `UPDATE outbox SET state = 'done', attempts = attempts + 1, last_error = NULL, claim_owner = NULL, claim_until = NULL WHERE id = $1`;
    if (location === undefined) this.q(done, [action.id]);
    else this.q(`WITH a AS (${done} RETURNING job_id) UPDATE jobs SET location = $2, updated_at = $3 WHERE id = (SELECT job_id FROM a)`, [action.id, location, this.now()]);
  }

  actionFailed(action: Action, error: string, retryAt: number | null): void {
    this.q(`UPDATE outbox SET attempts = attempts + 1, last_error = $1, state = $2, next_at = COALESCE($3, next_at), claim_owner = NULL, claim_until = NULL WHERE id = $4`,
      [error, retryAt === null ? 'dead' : 'pending', retryAt, action.id]);
  }

  replay(kind: string, which: { jobId: number } | { sinceMs: number } | { all: true }, opts: { dead?: boolean } = {}): number {
    const t = this.now();
    const states = opts.dead ? `state = 'dead'` : `state != 'pending'`;
    const set = `UPDATE outbox SET state = 'pending', attempts = 0, next_at = $1, last_error = NULL, claim_owner = NULL, claim_until = NULL WHERE kind = $2 AND ${states}`;
    if ('jobId' in which) return this.bridge.query(`${set} AND job_id = $3`, [t, kind, which.jobId]).rowCount;
    if ('sinceMs' in which) return this.bridge.query(`${set} AND job_id IN (SELECT id FROM jobs WHERE updated_at >= $3)`, [t, kind, which.sinceMs]).rowCount;
    return this.bridge.query(set, [t, kind]).rowCount;
  }

  actionsOf(jobId: number): (Action & { state: string; lastError: string | null })[] {
    return this.q<OutboxRow>('SELECT * FROM outbox WHERE job_id = $1 ORDER BY seq', [jobId]).map((r) => ({
      id: r.id, jobId: r.job_id, seq: r.seq, kind: r.kind, payload: JSON.parse(r.payload), attempts: r.attempts, state: r.state, lastError: r.last_error,
    }));
  }

  byDedupeKey(key: string): Job | undefined {
    const r = this.q<JobRow>('SELECT * FROM jobs WHERE dedupe_key = $1', [key])[0];
    return r ? toJob(r) : undefined;
  }

  nextActionAt(): number | null {
    return this.q<{ t: number | null }>(`SELECT MIN(next_at) AS t FROM outbox WHERE state = 'pending'`)[0]!.t;
  }

  queuedCount(): number {
    return this.q<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE state = 'queued'`)[0]!.n;
  }

  pendingActionCount(): number {
    return this.q<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state = 'pending'`)[0]!.n;
  }

  counts(): Record<JobState | 'outboxPending' | 'outboxDead', number> {
    const c = { queued: 0, running: 0, done: 0, failed: 0, outboxPending: 0, outboxDead: 0 };
    const rows = this.q<{ t: string; state: string; n: number }>(
      `SELECT 'j' AS t, state, count(*)::int AS n FROM jobs GROUP BY state UNION ALL SELECT 'o', state, count(*)::int FROM outbox GROUP BY state`);
    for (const r of rows) {
      if (r.t === 'j') c[r.state as JobState] = r.n;
      else if (r.state === 'pending') c.outboxPending = r.n;
      else if (r.state === 'dead') c.outboxDead = r.n;
    }
    return c;
  }

  /** The nodes the journal knows, with the leases and claims each holds (for /healthz). */
  nodes(): NodeView[] {
    const rows = this.q<{ name: string; role: string; host: string; pid: number; started_at: number; seen_at: number; alive: boolean; leases: number; claims: number }>(
      `SELECT n.name, n.role, n.host, n.pid, n.started_at, n.seen_at, (n.stopped_at IS NULL AND n.seen_at >= ${NOW} - $1) AS alive,
         (SELECT count(*)::int FROM jobs j WHERE j.state = 'running' AND j.lease_owner = n.owner) AS leases,
         (SELECT count(*)::int FROM outbox o WHERE o.state = 'pending' AND o.claim_owner = n.owner) AS claims
       FROM nodes n ORDER BY n.name`, [this.dead]);
    return rows.map((r) => ({ name: r.name, role: r.role, host: r.host, pid: r.pid, alive: r.alive, startedAt: r.started_at, seenAt: r.seen_at, leases: r.leases, claims: r.claims }));
  }

  pluginGet(plugin: string, key: string): unknown {
    const r = this.q<{ value: string }>('SELECT value FROM plugin_state WHERE plugin = $1 AND key = $2', [plugin, key])[0];
    return r ? JSON.parse(r.value) : undefined;
  }

  pluginSet(plugin: string, key: string, value: unknown): void {
    this.q('INSERT INTO plugin_state (plugin, key, value) VALUES ($1, $2, $3) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value', [plugin, key, JSON.stringify(value)]);
  }

  pluginEntries(prefix: string, plugin?: string): { plugin: string; key: string; value: unknown }[] {
    return this.q<{ plugin: string; key: string; value: string }>(
      `SELECT plugin, key, value FROM plugin_state WHERE left(key, length($1)) = $1 AND ($2::text IS NULL OR plugin = $2) ORDER BY plugin, key`, [prefix, plugin ?? null],
    ).map((r) => ({ plugin: r.plugin, key: r.key, value: JSON.parse(r.value) }));
  }

  pluginDelete(plugin: string, key: string): boolean {
    return this.bridge.query('DELETE FROM plugin_state WHERE plugin = $1 AND key = $2', [plugin, key]).rowCount === 1;
  }

  prune(days: number, limit = Number.MAX_SAFE_INTEGER): number {
    const before = this.now() - days * 86_400_000;
    return this.bridge.query(
      `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'failed') AND updated_at < $1
         AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = jobs.id AND o.state = 'pending') ORDER BY id LIMIT $2)`,
      [before, Math.min(limit, 2 ** 31 - 1)]).rowCount;
  }

  /** The probe that ends a pause: a tiny write (plugin '' cannot clash with a source name). */
  probeWrite(): void {
    this.q(`INSERT INTO plugin_state (plugin, key, value) VALUES ('', 'write-probe', $1) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value`, [String(this.now())]);
  }

  /** PostgreSQL's autovacuum keeps the planner's statistics; nothing to do here. */
  optimize(): void {}

  ping(): boolean {
    if (!this.bridge.up) return false;
    try {
      return this.q<{ ok: number }>('SELECT 1 AS ok')[0]?.ok === 1;
    } catch {
      return false;
    }
  }

  /** Leave the registry (this node's leases and claims are free at once) and close the connections. */
  close(): void {
    try {
      if (this.bridge.up) this.q(`UPDATE nodes SET stopped_at = ${NOW} WHERE owner = $1`, [this.owner]);
    } catch {
      /* unreachable: the node times out instead */
    }
    this.bridge.close();
  }
}
