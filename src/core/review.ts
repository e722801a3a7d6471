/**
 * A person's decision on a job in a review band, planned like a scored job's result: the rule's actions for the
 * chosen band, journalled in one transaction with the decision (journal-review.ts) and carried out by the outbox —
 * so the file moves from where the review band put it to the chosen band's folder, the sidecar is rewritten, and
 * callbacks send the new result as `match.reviewed`. Pure planning here; nothing is touched.
 */
import path from 'node:path';
import type { Rule } from './config.ts';
import { MatchdError } from './errors.ts';
import type { Job } from './journal.ts';
import type { Bands } from './model/manifest.ts';
import { planActions } from './router.ts';

export type Decision = { decision: 'approve' } | { decision: 'reject' } | { decision: 'band'; band: string };

/** A journalled decision (one per job: the first wins). */
export interface Label {
  jobId: number;
  rule: string;
  decision: Decision['decision'];
  band: string;
  /** The band the job was in when it was decided. */
  previous: string;
  reviewer: string;
  at: number;
  /** Where the image is (follows the file when the decision moves it). */
  image: string;
  texts: string[];
  results: { text: string; cosine: number; score: number; band: string }[];
  decidedBy: string | null;
}

/** Actions that touch the job's file: they must be settled before a decision (it moves the file from where it is). */
const FILE_KINDS = new Set(['move', 'copy', 'sidecar', 'discard']);

/** The bands whose jobs wait for a person: those marked `review: true`; with none marked at all, a band named `review`. */
export function reviewBands(bands: Bands): string[] {
  const marked = bands.list.some((b) => b.review !== undefined);
  return bands.list.filter((b) => (marked ? b.review === true : b.name === 'review')).map((b) => b.name);
}

/** The band a decision sends the job to: approve → the best band, reject → the lowest, or one by name. */
export function targetBand(bands: Bands, d: Decision): string {
  if (d.decision === 'approve') return bands.list[0]!.name;
  if (d.decision === 'reject') return bands.list[bands.list.length - 1]!.name;
  return d.band;
}

export interface ReviewInput {
  rule: Rule;
  bands: Bands;
  job: Job;
  /** The job's journalled actions so far, with their state. */
  actions: { kind: string; state: string; payload: Record<string, unknown> }[];
  decision: Decision;
  reviewer: string;
  at: number;
  baseDir: string;
}

export interface ReviewPlan {
  band: string;
  doc: Record<string, unknown>;
  actions: { kind: string; payload: Record<string, unknown> }[];
  label: Label;
}

function invalid(message: string): MatchdError {
  return new MatchdError('MATCHD_REVIEW_INVALID', message);
}

/** Check a decision against the job and its rule and plan what it does; MATCHD_REVIEW_INVALID says why not. */
export function planReview(x: ReviewInput): ReviewPlan {
  const { job, bands } = x;
  const review = reviewBands(bands);
  if (job.state !== 'done' || !job.outcome || !review.includes(job.outcome)) {
    throw invalid(`job ${job.id} is not waiting for review (it is ${job.state === 'done' ? `in band '${job.outcome}'` : job.state}; review bands of rule '${job.rule}': ${review.join(', ') || 'none'})`);
  }
  const band = targetBand(bands, x.decision);
  const names = bands.list.map((b) => b.name);
  if (!names.includes(band)) throw invalid(`rule '${job.rule}' has no band '${band}' (bands: ${names.join(', ')})`);
  if (review.includes(band)) throw invalid(`'${band}' is a review band; a decision sends the job out of review (to ${names.filter((n) => !review.includes(n)).join(', ')})`);
  const moving = x.actions.filter((a) => FILE_KINDS.has(a.kind) && a.state === 'pending').length;
  if (moving) throw invalid(`job ${job.id}'s file is still being moved (${moving} action(s) pending); try again in a moment`);

  const result = (job.result ?? {}) as Record<string, unknown>;
  const results = ((result.results as Label['results'] | undefined) ?? []).map(({ text, cosine, score, band: b }) => ({ text, cosine, score, band: b }));
  const location = job.location ?? job.imagePath;
  const doc: Record<string, unknown> = {
    ...result,
    outcome: band,
    review: { decision: x.decision.decision, band, previous: job.outcome, reviewer: x.reviewer, at: new Date(x.at).toISOString() },
  };
  const label: Label = {
    jobId: job.id, rule: job.rule, decision: x.decision.decision, band, previous: job.outcome, reviewer: x.reviewer, at: x.at, image: location,
    texts: results.map((r) => r.text), results, decidedBy: typeof result.decidedBy === 'string' ? result.decidedBy : null,
  };
  return { band, doc, actions: rerouteActions(x, band, doc, location), label };
}

/**
 * The rule's actions for the chosen band, acting on the file where it is now (its companions, renamed with it by the
 * review band's move, go along). After a move the old sidecar is removed; a `move`/`copy` into the folder the file
 * is already in is left out. A job whose image was a temporary copy (an upload, an S3 download) has no file any more:
 * only the actions that do not touch it (callbacks, log, a source's own) run.
 */
function rerouteActions(x: ReviewInput, band: string, doc: Record<string, unknown>, location: string): ReviewPlan['actions'] {
  const { job } = x;
  const stem = path.join(path.dirname(location), path.basename(location, path.extname(location)));
  const companions = (job.extra.companions ?? []).map((c) => (location === job.imagePath ? c : stem + path.extname(c)));
  const here: Job = { ...job, imagePath: location, extra: { ...job.extra, temporary: false, ...(companions.length ? { companions } : {}) } };
  const planned = planActions(x.rule, here, { outcome: band }, doc, x.baseDir).filter((a) => {
    if (job.extra.temporary && FILE_KINDS.has(a.kind)) return false;
    return !((a.kind === 'move' || a.kind === 'copy') && path.resolve(String(a.payload.dir)) === path.dirname(location));
  });
  const moveAt = planned.findIndex((a) => a.kind === 'move');
  if (moveAt < 0) return planned;
  const oldSidecars = x.actions
    .filter((a) => a.kind === 'sidecar' && a.state === 'done')
    .map((a) => path.join(typeof a.payload.dir === 'string' ? a.payload.dir : path.dirname(location), `${path.basename(location)}.json`));
  const removals = [...new Set(oldSidecars)].map((p) => ({ kind: 'discard', payload: { path: p } }));
  return [...planned.slice(0, moveAt + 1), ...removals, ...planned.slice(moveAt + 1)];
}
