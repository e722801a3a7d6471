/**
 * The web page's queries and the review decision on the PostgreSQL journal: the same results as the SQLite ones in
 * journal-review.ts (which hands calls on a PostgreSQL journal to these), over the same indexes.
 */
import { MatchdError } from '../errors.ts';
import type { ActionView, DecideResult, JobFilter, JobPage } from '../journal-review-types.ts';
import { toJob, type Job, type JobRow } from '../journal.ts';
import type { Label, ReviewPlan } from '../review.ts';
import type { PgJournal } from './journal.ts';
import { inTransaction, numbered } from './sql.ts';

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
  return { sql: parts.length ? parts.join(' AND ') : 'TRUE', args };
}

const rows = <R>(j: PgJournal, sql: string, args: unknown[]): R[] => j.bridge.query<R>(numbered(sql), args).rows;

export function pgListJobs(j: PgJournal, f: JobFilter, page: { olderThan?: number; newerThan?: number }, limit: number): JobPage {
  const w = where(f);
  if (page.newerThan !== undefined) {
    const found = rows<JobRow>(j, `SELECT * FROM jobs WHERE ${w.sql} AND id > ? ORDER BY id ASC LIMIT ?`, [...w.args, page.newerThan, limit + 1]);
    const more = found.length > limit;
    const jobs = found.slice(0, limit).reverse().map(toJob);
    return { jobs, ...(jobs.length ? { olderThan: jobs[jobs.length - 1]!.id } : {}), ...(more && jobs.length ? { newerThan: jobs[0]!.id } : {}) };
  }
  const before = page.olderThan ?? Number.MAX_SAFE_INTEGER;
  const found = rows<JobRow>(j, `SELECT * FROM jobs WHERE ${w.sql} AND id < ? ORDER BY id DESC LIMIT ?`, [...w.args, before, limit + 1]);
  const more = found.length > limit;
  const jobs = found.slice(0, limit).map(toJob);
  return {
    jobs,
    ...(more && jobs.length ? { olderThan: jobs[jobs.length - 1]!.id } : {}),
    ...(page.olderThan !== undefined && jobs.length ? { newerThan: jobs[0]!.id } : {}),
  };
}

export function pgActionsOfJobs(j: PgJournal, ids: number[]): Map<number, ActionView[]> {
  const out = new Map<number, ActionView[]>();
  if (!ids.length) return out;
  const found = rows<{ job_id: number; seq: number; kind: string; state: ActionView['state']; attempts: number; last_error: string | null }>(
    j, 'SELECT job_id, seq, kind, state, attempts, last_error FROM outbox WHERE job_id = ANY(?::bigint[]) ORDER BY job_id, seq', [ids]);
  for (const r of found) {
    const list = out.get(r.job_id) ?? [];
    list.push({ jobId: r.job_id, seq: r.seq, kind: r.kind, state: r.state, attempts: r.attempts, lastError: r.last_error });
    out.set(r.job_id, list);
  }
  return out;
}

function queueWhere(bandsByRule: Map<string, string[]>): { sql: string; args: unknown[] } {
  const pairs = [...bandsByRule].filter(([, bands]) => bands.length);
  if (!pairs.length) return { sql: 'FALSE', args: [] };
  const sql = pairs.map(([, bands]) => `(rule = ? AND outcome IN (${bands.map(() => '?').join(', ')}))`).join(' OR ');
  const names = [...new Set(pairs.flatMap(([, bands]) => bands))];
  return {
    sql: `outcome IN (${names.map(() => '?').join(', ')}) AND state = 'done' AND (${sql})`,
    args: [...names, ...pairs.flatMap(([rule, bands]) => [rule, ...bands])],
  };
}

export function pgReviewCount(j: PgJournal, bandsByRule: Map<string, string[]>): number {
  const w = queueWhere(bandsByRule);
  return rows<{ n: number }>(j, `SELECT count(*)::int AS n FROM jobs WHERE ${w.sql}`, w.args)[0]!.n;
}

export function pgReviewQueue(j: PgJournal, bandsByRule: Map<string, string[]>, at?: number): { job?: Job; previous?: number; next?: number; position: number; total: number } {
  const w = queueWhere(bandsByRule);
  const total = pgReviewCount(j, bandsByRule);
  const first = at === undefined
    ? rows<JobRow>(j, `SELECT * FROM jobs WHERE ${w.sql} ORDER BY id ASC LIMIT 1`, w.args)[0]
    : (rows<JobRow>(j, `SELECT * FROM jobs WHERE ${w.sql} AND id >= ? ORDER BY id ASC LIMIT 1`, [...w.args, at])[0]
      ?? rows<JobRow>(j, `SELECT * FROM jobs WHERE ${w.sql} ORDER BY id DESC LIMIT 1`, w.args)[0]);
  if (!first) return { position: 0, total };
  const id = first.id;
  const prev = rows<{ id: number }>(j, `SELECT id FROM jobs WHERE ${w.sql} AND id < ? ORDER BY id DESC LIMIT 1`, [...w.args, id])[0];
  const next = rows<{ id: number }>(j, `SELECT id FROM jobs WHERE ${w.sql} AND id > ? ORDER BY id ASC LIMIT 1`, [...w.args, id])[0];
  const position = rows<{ n: number }>(j, `SELECT count(*)::int AS n FROM jobs WHERE ${w.sql} AND id <= ?`, [...w.args, id])[0]!.n;
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

export function pgLabelOf(j: PgJournal, jobId: number): Label | undefined {
  const r = rows<LabelRow>(j, 'SELECT * FROM labels WHERE job_id = ?', [jobId])[0];
  return r ? toLabel(r) : undefined;
}

export function pgLabelsOfJobs(j: PgJournal, ids: number[]): Map<number, Label> {
  if (!ids.length) return new Map();
  return new Map(rows<LabelRow>(j, 'SELECT * FROM labels WHERE job_id = ANY(?::bigint[])', [ids]).map((r) => [r.job_id, toLabel(r)]));
}

/** Labels decided at or after `since`, oldest first, read a page at a time (keyset on (at, job_id)). */
export function* pgIterateLabels(j: PgJournal, since = 0): Generator<Label> {
  let after: [number, number] = [since, -1];
  for (;;) {
    const page = rows<LabelRow>(j, 'SELECT * FROM labels WHERE (at, job_id) > (?, ?) ORDER BY at, job_id LIMIT 500', after);
    for (const r of page) yield toLabel(r);
    if (page.length < 500) return;
    const last = page[page.length - 1]!;
    after = [last.at, last.job_id];
  }
}

/** The review decision, as journal-review.ts's `decide`: one transaction, the job row locked, the first decision wins. */
export function pgDecide(
  j: PgJournal,
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
    return inTransaction(j.bridge, (q): DecideResult => {
      const row = q<JobRow>('SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [jobId]).rows[0];
      if (!row) throw new Refused(new MatchdError('MATCHD_REQUEST_INVALID', `there is no job ${jobId}`, { status: 404 }));
      const firstRow = q<LabelRow>('SELECT * FROM labels WHERE job_id = $1', [jobId]).rows[0];
      if (firstRow) {
        const first = toLabel(firstRow);
        throw new Refused(
          new MatchdError('MATCHD_REVIEW_DECIDED', `job ${jobId} was already decided by ${first.reviewer} at ${new Date(first.at).toISOString()} (→ ${first.band}); nothing was changed`),
          first,
        );
      }
      const actions = q<{ kind: string; state: string; payload: string }>('SELECT kind, state, payload FROM outbox WHERE job_id = $1 ORDER BY seq', [jobId]).rows
        .map((a) => ({ kind: a.kind, state: a.state, payload: JSON.parse(a.payload) as Record<string, unknown> }));
      let p: ReviewPlan;
      try {
        p = plan(toJob(row), actions);
      } catch (err) {
        if (err instanceof MatchdError) throw new Refused(err);
        throw err;
      }
      const l = p.label;
      q(`INSERT INTO labels (job_id, rule, decision, band, previous, reviewer, at, image, texts, results, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [l.jobId, l.rule, l.decision, l.band, l.previous, l.reviewer, l.at, l.image, JSON.stringify(l.texts), JSON.stringify(l.results), l.decidedBy]);
      q('UPDATE jobs SET outcome = $1, result = $2, updated_at = $3 WHERE id = $4', [p.band, JSON.stringify(p.doc), now, jobId]);
      if (p.actions.length) {
        q(`INSERT INTO outbox (job_id, seq, kind, payload, state, next_at)
           SELECT $1, (SELECT COALESCE(MAX(seq), -1) FROM outbox WHERE job_id = $1) + a.n, a.kind, a.payload, 'pending', $2
           FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS a(kind, payload, n)`,
          [jobId, now, p.actions.map((a) => a.kind), p.actions.map((a) => JSON.stringify(a.payload))]);
      }
      return { ok: true, label: l, actions: p.actions.length };
    });
  } catch (err) {
    if (err instanceof Refused) return { ok: false, error: err.error, ...(err.label ? { label: err.label } : {}) };
    throw err;
  }
}
