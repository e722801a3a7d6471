/**
 * The review decisions as CSV or JSON Lines, for `matchd calibrate` (it reads either): one row per decision with the
 * image (where it is now), the deciding text, the chosen band as the label, its cosine and score, and the rest of
 * the decision. `?since=2026-05-01T00:00` limits it to recent ones. Streamed: the export may be large.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { MatchdError } from '../../core/errors.ts';
import { iterateLabels } from '../../core/journal-review.ts';
import type { Label } from '../../core/review.ts';
import type { UiContext } from '../context.ts';

export const LABEL_COLUMNS = ['image', 'text', 'label', 'cosine', 'score', 'decision', 'previous', 'rule', 'job_id', 'reviewer', 'decided_at', 'texts'] as const;

/** One export row: the decision applies to the text that decided the band. */
export function labelRecord(l: Label): Record<(typeof LABEL_COLUMNS)[number], unknown> {
  const decided = l.results.find((r) => r.text === l.decidedBy) ?? l.results[0];
  return {
    image: l.image, text: decided?.text ?? '', label: l.band, cosine: decided?.cosine ?? null, score: decided?.score ?? null,
    decision: l.decision, previous: l.previous, rule: l.rule, job_id: l.jobId, reviewer: l.reviewer, decided_at: new Date(l.at).toISOString(), texts: l.texts,
  };
}

/** RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled. */
export function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : Array.isArray(v) || typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function registerLabels(app: FastifyInstance, ctx: UiContext): void {
  for (const format of ['csv', 'jsonl'] as const) {
    app.get(`/labels.${format}`, (req, reply) => {
      const raw = (req.query as { since?: unknown }).since;
      let since = 0;
      if (typeof raw === 'string' && raw !== '') {
        since = new Date(raw).getTime();
        if (Number.isNaN(since)) throw new MatchdError('MATCHD_REQUEST_INVALID', `since: expected a date like 2026-05-01T00:00 but received ${JSON.stringify(raw.slice(0, 40))}`);
      }
      // Read in one go under the journal guard (labels are small rows); then stream the text out.
      const labels = ctx.b.read('export labels', (j) => [...iterateLabels(j, since)]);
      const lines = function* () {
        if (format === 'csv') yield LABEL_COLUMNS.join(',') + '\r\n';
        for (const l of labels) {
          const rec = labelRecord(l);
          yield format === 'csv' ? LABEL_COLUMNS.map((c) => csvField(rec[c])).join(',') + '\r\n' : JSON.stringify(rec) + '\n';
        }
      };
      const stamp = new Date().toISOString().slice(0, 10);
      return reply
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="matchd-labels-${stamp}.${format}"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(lines()));
    });
  }
}
