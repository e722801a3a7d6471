/**
 * The journal's queries for the web page and the review decision: jobs by filter (keyset pages over the indexes of
 * schema version 3), the review queue, labels, and a decision journalled in one transaction with the actions it
 * causes — the first decision per job wins.
 */
import { MatchdError } from './errors.ts';
import { toJob, type Job, type JobRow, type Journal } from './journal.ts';
import type { Label, ReviewPlan } from './review.ts';

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

function where(f: JobFilter): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  if (f.rule !== undefined) (parts.push('rule = ?'), args.push(f.rule));
  if (f.source !== undefined) (parts.push('source = ?'), args.push(f.source));
  if (f.band !== undefined) (parts.push('outcome = ?'), args.push(f.band));
  if (f.outcome === 'matched') parts.push(`state = 'done'`);
  if (f.outcome === 'error') parts.push(`state = 'failed'`);
  if (f.outcome === 'pending') parts.push(`state IN ('queued', 'running')`);
  if (f.outcome === 'reviewed') parts.push('id IN (SELECT job_id FROM labels)');
  if (f.from !== undefined) (parts.push('created_at >= ?'), args.push(f.from));
  if (f.to !== undefined) (parts.push('created_at < ?'), args.push(f.to));
  return { sql: parts.length ? parts.join(' AND ') : '1', args };
}

/**
 * A time window as the id range it spans (one covering scan of the created_at index), so the page still walks the
 * primary key newest first instead of sorting the whole window. Exact: created_at is checked as well, and the range
 * holds every id in the window even where the clock went backwards.
 */
function idRange(j: Journal, f: JobFilter): { sql: string; args: unknown[] } | null {
  if (f.from === undefined && f.to === undefined) return { sql: '', args: [] };
  const r = j.sql.prepare('SELECT MIN(id) AS lo, MAX(id) AS hi FROM jobs WHERE created_at >= ? AND created_at < ?')
    .get(f.from ?? Number.MIN_SAFE_INTEGER, f.to ?? Number.MAX_SAFE_INTEGER) as { lo: number | null; hi: number | null };
  return r.lo === null ? null : { sql: ' AND id BETWEEN ? AND ?', args: [r.lo, r.hi] };
}

/** One page of jobs, newest first: before `olderThan` (the next page), after `newerThan` (the previous one), or the newest. */
export function listJobs(j: Journal, f: JobFilter, page: { olderThan?: number; newerThan?: number }, limit: number): JobPage {
  const range = idRange(j, f);
  if (!range) return { jobs: [] };
  const base = where(f);
  const w = { sql: base.sql + range.sql, args: [...base.args, ...range.args] };
  let rows: JobRow[];
  if (page.newerThan !== undefined) {
    rows = (j.sql.prepare(`SELECT * FROM jobs WHERE ${w.sql} AND id > ? ORDER BY id ASC LIMIT ?`).all(...w.args, page.newerThan, limit + 1) as JobRow[]);
    const more = rows.length > limit;
    rows = rows.slice(0, limit).reverse();
    const jobs = rows.map(toJob);
    return { jobs, ...(jobs.length ? { olderThan: jobs[jobs.length - 1]!.id } : {}), ...(more && jobs.length ? { newerThan: jobs[0]!.id } : {}) };
  }
  const before = page.olderThan ?? Number.MAX_SAFE_INTEGER;
  rows = j.sql.prepare(`SELECT * FROM jobs WHERE ${w.sql} AND id < ? ORDER BY id DESC LIMIT ?`).all(...w.args, before, limit + 1) as JobRow[];
  const more = rows.length > limit;
  const jobs = rows.slice(0, limit).map(toJob);
  return {
    jobs,
    ...(more && jobs.length ? { olderThan: jobs[jobs.length - 1]!.id } : {}),
    ...(page.olderThan !== undefined && jobs.length ? { newerThan: jobs[0]!.id } : {}),
  };
}

/** The actions of these jobs, in order per job (one indexed lookup per job). */
export function actionsOfJobs(j: Journal, ids: number[]): Map<number, ActionView[]> {
  const out = new Map<number, ActionView[]>();
  if (!ids.length) return out;
  const rows = j.sql
    .prepare(`SELECT job_id, seq, kind, state, attempts, last_error FROM outbox WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY job_id, seq`)
    .all(JSON.stringify(ids)) as { job_id: number; seq: number; kind: string; state: ActionView['state']; attempts: number; last_error: string | null }[];
  for (const r of rows) {
    const list = out.get(r.job_id) ?? [];
    list.push({ jobId: r.job_id, seq: r.seq, kind: r.kind, state: r.state, attempts: r.attempts, lastError: r.last_error });
    out.set(r.job_id, list);
  }
  return out;
}

/** The review-band pairs (rule, band) the queue holds, as SQL. */
function queueWhere(bandsByRule: Map<string, string[]>): { sql: string; args: unknown[] } {
  const pairs = [...bandsByRule].filter(([, bands]) => bands.length);
  if (!pairs.length) return { sql: '0', args: [] };
  const sql = pairs.map(([, bands]) => `(rule = ? AND outcome IN (${bands.map(() => '?').join(', ')}))`).join(' OR ');
  // outcome first, so that SQLite walks the outcome index (the queue is a small part of the jobs) rather than `state`.
  const names = [...new Set(pairs.flatMap(([, bands]) => bands))];
  return {
    sql: `outcome IN (${names.map(() => '?').join(', ')}) AND state = 'done' AND (${sql})`,
    args: [...names, ...pairs.flatMap(([rule, bands]) => [rule, ...bands])],
  };
}

/** How many jobs wait for a person (an index range per review band). */
export function reviewCount(j: Journal, bandsByRule: Map<string, string[]>): number {
  const w = queueWhere(bandsByRule);
  return (j.sql.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE ${w.sql}`).get(...w.args) as { n: number }).n;
}

/** Jobs waiting for a person, oldest first: the one at or after `fromId`, its neighbours and the queue's size. */
export function reviewQueue(j: Journal, bandsByRule: Map<string, string[]>, at?: number): { job?: Job; previous?: number; next?: number; position: number; total: number } {
  const w = queueWhere(bandsByRule);
  const total = reviewCount(j, bandsByRule);
  const first = at === undefined
    ? (j.sql.prepare(`SELECT * FROM jobs WHERE ${w.sql} ORDER BY id ASC LIMIT 1`).get(...w.args) as JobRow | undefined)
    : ((j.sql.prepare(`SELECT * FROM jobs WHERE ${w.sql} AND id >= ? ORDER BY id ASC LIMIT 1`).get(...w.args, at) as JobRow | undefined)
      ?? (j.sql.prepare(`SELECT * FROM jobs WHERE ${w.sql} ORDER BY id DESC LIMIT 1`).get(...w.args) as JobRow | undefined));
  if (!first) return { position: 0, total };
  const id = first.id;
  const prev = j.sql.prepare(`SELECT id FROM jobs WHERE ${w.sql} AND id < ? ORDER BY id DESC LIMIT 1`).get(...w.args, id) as { id: number } | undefined;
  const next = j.sql.prepare(`SELECT id FROM jobs WHERE ${w.sql} AND id > ? ORDER BY id ASC LIMIT 1`).get(...w.args, id) as { id: number } | undefined;
  const position = (j.sql.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE ${w.sql} AND id <= ?`).get(...w.args, id) as { n: number }).n;
  return { job: toJob(first), ...(prev ? { previous: prev.id } : {}), ...(next ? { next: next.id } : {}), position, total };
}

interface LabelRow {
  job_id: number; rule: string; decision: Label['decision']; band: string; previous: string; reviewer: string; at: number; image: string;
  texts: string; results: string; decided_by: string | null;
}

function toLabel(r: LabelRow): Label {
  return {
    jobId: r.job_id, rule: r.rule, decision: r.decision, band: r.band, previous: r.previous, reviewer: r.reviewer, at: r.at, image: r.image,
    texts: JSON.parse(r.texts), results: JSON.parse(r.results), decidedBy: r.decided_by,
  };
}

export function labelOf(j: Journal, jobId: number): Label | undefined {
  const r = j.sql.prepare('SELECT * FROM labels WHERE job_id = ?').get(jobId) as LabelRow | undefined;
  return r ? toLabel(r) : undefined;
}

/** Labels of these jobs (for a page of jobs). */
export function labelsOfJobs(j: Journal, ids: number[]): Map<number, Label> {
  if (!ids.length) return new Map();
  const rows = j.sql.prepare('SELECT * FROM labels WHERE job_id IN (SELECT value FROM json_each(?))').all(JSON.stringify(ids)) as LabelRow[];
  return new Map(rows.map((r) => [r.job_id, toLabel(r)]));
}

/** Every label decided at or after `since` (ms), oldest first, streamed (an export may be large). */
export function* iterateLabels(j: Journal, since = 0): Generator<Label> {
  for (const r of j.sql.prepare('SELECT * FROM labels WHERE at >= ? ORDER BY at, job_id').iterate(since) as IterableIterator<LabelRow>) yield toLabel(r);
}

export type DecideResult = { ok: true; label: Label; actions: number } | { ok: false; error: MatchdError; label?: Label };

/**
 * Record a decision: in one transaction, check that nobody decided first, plan it against the job as it is now,
 * write the label, the job's new outcome and result, and the actions (after the job's earlier ones, so they run in
 * order). A refusal (unknown job, decided already, not waiting for review) changes nothing.
 */
export function decide(
  j: Journal,
  jobId: number,
  plan: (job: Job, actions: { kind: string; state: string; payload: Record<string, unknown> }[]) => ReviewPlan,
  now: number,
): DecideResult {
  class Refused extends Error {
    constructor(readonly error: MatchdError, readonly label?: Label) {
      super(error.message);
    }
  }
  try {
    return j.sql.transaction((): DecideResult => {
      const job = j.get(jobId);
      if (!job) throw new Refused(new MatchdError('MATCHD_REQUEST_INVALID', `there is no job ${jobId}`, { status: 404 }));
      const first = labelOf(j, jobId);
      if (first) {
        throw new Refused(
          new MatchdError('MATCHD_REVIEW_DECIDED', `job ${jobId} was already decided by ${first.reviewer} at ${new Date(first.at).toISOString()} (→ ${first.band}); nothing was changed`),
          first,
        );
      }
      let p: ReviewPlan;
      try {
        p = plan(job, j.actionsOf(jobId));
      } catch (err) {
        if (err instanceof MatchdError) throw new Refused(err);
        throw err;
      }
      const l = p.label;
      j.sql.prepare(`INSERT INTO labels (job_id, rule, decision, band, previous, reviewer, at, image, texts, results, decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(l.jobId, l.rule, l.decision, l.band, l.previous, l.reviewer, l.at, l.image, JSON.stringify(l.texts), JSON.stringify(l.results), l.decidedBy);
      j.sql.prepare('UPDATE jobs SET outcome = ?, result = ?, updated_at = ? WHERE id = ?').run(p.band, JSON.stringify(p.doc), now, jobId);
      const seq = (j.sql.prepare('SELECT COALESCE(MAX(seq), -1) AS s FROM outbox WHERE job_id = ?').get(jobId) as { s: number }).s;
      const insert = j.sql.prepare(`INSERT INTO outbox (job_id, seq, kind, payload, state, next_at) VALUES (?, ?, ?, ?, 'pending', ?)`);
      p.actions.forEach((a, i) => insert.run(jobId, seq + 1 + i, a.kind, JSON.stringify(a.payload), now));
      return { ok: true, label: l, actions: p.actions.length };
    })();
  } catch (err) {
    if (err instanceof Refused) return { ok: false, error: err.error, ...(err.label ? { label: err.label } : {}) };
    throw err;
  }
}
