/**
 * The review queue: jobs in review bands, oldest first, one at a time — the image large, its texts and scores, and
 * the decisions: approve (→ the rule's best band), reject (→ its lowest), or another band by name; keys a / r / j / k
 * (and 1–9 for the other bands) in ui.js. A decision is journalled with its actions by the daemon (the first per job
 * wins; a second reviewer is told who decided), then the next item shows.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MatchdError } from '../../core/errors.ts';
import { labelOf, reviewQueue } from '../../core/journal-review.ts';
import type { Decision } from '../../core/review.ts';
import { targetBand } from '../../core/review.ts';
import { statusOf, type UiContext } from '../context.ts';
import { html, when, type Flash } from '../html.ts';
import { jobImageAvailable } from './images.ts';
import { scoresTable } from './jobs.ts';

function optionalId(name: string, v: unknown): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw new MatchdError('MATCHD_REQUEST_INVALID', `${name}: expected a job id`, { status: 400 });
  return Number(v);
}

/** The form's `choice`: approve, reject or band:<name>. */
function parseChoice(v: unknown): Decision {
  if (v === 'approve' || v === 'reject') return { decision: v };
  if (typeof v === 'string' && /^band:[A-Za-z0-9_-]{1,100}$/.test(v)) return { decision: 'band', band: v.slice(5) };
  throw new MatchdError('MATCHD_REVIEW_INVALID', `choice: expected approve, reject or band:<name> but received ${JSON.stringify(String(v ?? '').slice(0, 40))}; nothing was changed`);
}

export function registerReview(app: FastifyInstance, ctx: UiContext): void {
  const show = (req: FastifyRequest, reply: FastifyReply, at: number | undefined, flash?: Flash, status?: number) => {
    const q = ctx.b.read('read the review queue', (j) => reviewQueue(j, ctx.reviewBands, at));
    const csrf = ctx.session(req).csrf;
    if (!q.job) {
      const body = html`<h1>Review</h1><p class="empty" data-testid="queue-empty">Nothing waits for review.${ctx.reviewBands.size ? '' : html` No rule has a review band: mark one with <code>review: true</code> in its bands.`}</p>`;
      return ctx.send(req, reply, { title: 'Review', active: 'review', body, flash, ...(status ? { status } : {}) });
    }
    const job = q.job;
    const bands = ctx.b.bands(job.rule);
    const review = ctx.reviewBands.get(job.rule) ?? [];
    const best = targetBand(bands, { decision: 'approve' });
    const lowest = targetBand(bands, { decision: 'reject' });
    const others = bands.list.map((b) => b.name).filter((n) => n !== best && n !== lowest && !review.includes(n));
    const result = (job.result as Record<string, unknown> | null) ?? null;
    const file = (job.location ?? job.imagePath).split('/').pop();
    const body = html`<h1>Review <small data-testid="position">${q.position} of ${q.total}</small></h1>
<div class="review" data-job-id="${job.id}">
<figure class="big">${jobImageAvailable(job) ? html`<img src="/image/${job.id}?size=large" alt="job ${job.id}">` : html`<span class="noimg">no image kept for this job (an upload or a download)</span>`}</figure>
<section class="facts">
<p><strong>#${job.id}</strong> <span class="file">${file}</span><br><small>${when(job.createdAt)} · rule ${job.rule} · source ${job.source} · now in <span class="band band-${job.outcome}">${job.outcome}</span></small></p>
${scoresTable(result)}
${Object.keys(job.meta).length ? html`<details><summary>meta</summary><pre>${JSON.stringify(job.meta, null, 2)}</pre></details>` : ''}
<form method="post" action="/review/${job.id}" class="decide"><input type="hidden" name="_csrf" value="${csrf}">
<button type="submit" name="choice" value="approve" data-key="a" class="approve">Approve → ${best} <kbd>a</kbd></button>
<button type="submit" name="choice" value="reject" data-key="r" class="reject">Reject → ${lowest} <kbd>r</kbd></button>
${others.map((n, i) => html`<button type="submit" name="choice" value="band:${n}"${i < 9 ? html` data-key="${i + 1}"` : ''}>→ ${n}${i < 9 ? html` <kbd>${i + 1}</kbd>` : ''}</button>`)}
</form>
<nav class="pager">${q.previous !== undefined ? html`<a href="/review?job=${q.previous}" data-key="k" rel="prev">← previous <kbd>k</kbd></a>` : ''}
${q.next !== undefined ? html`<a href="/review?job=${q.next}" data-key="j" rel="next">next <kbd>j</kbd> →</a>` : ''}</nav>
</section></div>`;
    return ctx.send(req, reply, { title: `Review #${job.id}`, active: 'review', body, flash, ...(status ? { status } : {}) });
  };

  app.get('/review', (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const at = optionalId('job', q.job);
    const decided = optionalId('decided', q.decided);
    let flash: Flash | undefined;
    if (decided !== undefined) {
      const l = ctx.b.read('read a label', (j) => labelOf(j, decided));
      if (l) flash = { kind: 'ok', text: `Job #${decided}: ${l.previous} → ${l.band} (${l.decision}, by ${l.reviewer} at ${when(l.at)}); its actions are queued.` };
    }
    return show(req, reply, at, flash);
  });

  app.post('/review/:id', (req, reply) => {
    const id = optionalId('job', (req.params as { id: string }).id)!;
    const decision = parseChoice((req.body as Record<string, unknown> | undefined)?.choice);
    const r = ctx.b.decide(id, decision, ctx.session(req).user ?? 'local');
    ctx.decided();
    if (r.ok) return reply.redirect(`/review?job=${id}&decided=${id}`, 303);
    return show(req, reply, id, { kind: 'error', text: `${r.error.code}: ${r.error.message}` }, statusOf(r.error));
  });
}
