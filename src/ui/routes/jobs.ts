/**
 * The jobs page: recent results, newest first, filtered by rule, source, band, outcome and time, in keyset pages (an
 * index range each, however many jobs the journal holds). Each row: a thumbnail (by job id), the texts with cosine,
 * score and band, the deciding text, the actions and their state, the error code of a failed job, the review label.
 */
import type { FastifyInstance } from 'fastify';
import { MatchdError } from '../../core/errors.ts';
import { sourceName } from '../../core/config.ts';
import { actionsOfJobs, labelsOfJobs, listJobs, type ActionView, type JobFilter, type OutcomeFilter } from '../../core/journal-review.ts';
import type { Job } from '../../core/journal.ts';
import type { Label } from '../../core/review.ts';
import type { UiContext } from '../context.ts';
import { html, num, when, type Html } from '../html.ts';
import { jobImageAvailable } from './images.ts';

const OUTCOMES: Record<OutcomeFilter, string> = { matched: 'scored', error: 'failed (error)', pending: 'waiting to be scored', reviewed: 'decided on the review page' };

function bad(message: string): MatchdError {
  return new MatchdError('MATCHD_REQUEST_INVALID', message, { status: 400 });
}

/** `2026-05-01T12:00` (a datetime-local field, the server's time zone) → ms. */
function parseTime(name: string, v: string): number {
  const t = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$/.test(v) ? new Date(v.length === 10 ? `${v}T00:00` : v).getTime() : NaN;
  if (Number.isNaN(t)) throw bad(`${name}: expected a date and time like 2026-05-01T12:00 but received ${JSON.stringify(v.slice(0, 40))}`);
  return t;
}

function parseId(name: string, v: string): number {
  const n = Number(v);
  if (!/^\d{1,15}$/.test(v) || !Number.isSafeInteger(n)) throw bad(`${name}: expected a job id but received ${JSON.stringify(v.slice(0, 40))}`);
  return n;
}

/** The query string, checked once here: every filter names what it expects. */
export function parseJobQuery(q: Record<string, unknown>): { filter: JobFilter; page: { olderThan?: number; newerThan?: number }; raw: Record<string, string> } {
  const raw: Record<string, string> = {};
  for (const k of ['rule', 'source', 'band', 'outcome', 'from', 'to']) {
    const v = q[k];
    if (typeof v === 'string' && v !== '') {
      if (v.length > 200) throw bad(`${k}: at most 200 characters`);
      raw[k] = v;
    }
  }
  const filter: JobFilter = {};
  if (raw.rule) filter.rule = raw.rule;
  if (raw.source) filter.source = raw.source;
  if (raw.band) filter.band = raw.band;
  if (raw.outcome) {
    if (!(raw.outcome in OUTCOMES)) throw bad(`outcome: expected one of ${Object.keys(OUTCOMES).join(', ')} but received ${JSON.stringify(raw.outcome)}`);
    filter.outcome = raw.outcome as OutcomeFilter;
  }
  if (raw.from) filter.from = parseTime('from', raw.from);
  if (raw.to) filter.to = parseTime('to', raw.to);
  const page: { olderThan?: number; newerThan?: number } = {};
  if (typeof q.before === 'string') page.olderThan = parseId('before', q.before);
  else if (typeof q.after === 'string') page.newerThan = parseId('after', q.after);
  return { filter, page, raw };
}

function actionState(a: ActionView): { text: string; cls: string } {
  if (a.state === 'done') return { text: 'done', cls: 'done' };
  if (a.state === 'dead') return { text: 'dead-lettered', cls: 'dead' };
  return a.lastError ? { text: `failed, retrying (${a.attempts})`, cls: 'failed' } : { text: 'pending', cls: 'pending' };
}

/** The texts with cosine / score / band, the deciding one marked. */
export function scoresTable(result: Record<string, unknown> | null): Html {
  const rows = (result?.results as { text: string; cosine: number; score: number; band: string; truncated?: boolean }[] | undefined) ?? [];
  if (!rows.length) return html``;
  const decided = result?.decidedBy;
  return html`<table class="scores"><thead><tr><th>text</th><th>cosine</th><th>score</th><th>band</th></tr></thead><tbody>${rows.map((r) => html`<tr${r.text === decided ? html` class="decided" title="the deciding text"` : ''}>
<td>${r.text === decided ? html`<span class="star" aria-label="deciding text">★</span> ` : ''}${r.text}${r.truncated ? html` <small>(truncated)</small>` : ''}</td><td class="n">${num(r.cosine)}</td><td class="n">${num(r.score)}</td><td><span class="band band-${r.band}">${r.band}</span></td></tr>`)}</tbody></table>`;
}

function row(job: Job, actions: ActionView[], label: Label | undefined): Html {
  const result = (job.result as Record<string, unknown> | null) ?? null;
  const error = result?.error as { code: string; message: string } | undefined;
  const file = (job.location ?? job.imagePath).split('/').pop();
  const outcome = job.state === 'queued' || job.state === 'running'
    ? html`<span class="state">${job.state}</span>`
    : html`<span class="band band-${job.outcome}" data-testid="outcome">${job.outcome}</span>`;
  return html`<tr data-job-id="${job.id}">
<td class="thumb">${jobImageAvailable(job) ? html`<a href="/image/${job.id}?size=large"><img src="/image/${job.id}?size=thumb" alt="job ${job.id}" loading="lazy" width="96" height="96"></a>` : html`<span class="noimg">no image</span>`}</td>
<td class="what"><strong>#${job.id}</strong> <span class="file">${file}</span><br><small>${when(job.createdAt)} · rule ${job.rule} · source ${job.source}${job.texts ? ' · own texts' : ''}</small></td>
<td class="outcome">${outcome}${label ? html`<br><small class="label">reviewed: ${label.previous} → ${label.band}<br>by ${label.reviewer}, ${when(label.at)}</small>` : ''}${error ? html`<br><code class="code">${error.code}</code><br><small>${error.message}</small>` : ''}</td>
<td>${scoresTable(result)}</td>
<td class="actions">${actions.length ? html`<ul>${actions.map((a) => {
    const s = actionState(a);
    return html`<li><span class="kind">${a.kind}</span> <span class="astate ${s.cls}"${a.lastError ? html` title="${a.lastError}"` : ''}>${s.text}</span></li>`;
  })}</ul>` : html`<small>none yet</small>`}</td></tr>`;
}

function select(name: string, label: string, options: string[], value: string | undefined, names: Record<string, string> = {}): Html {
  return html`<label>${label} <select name="${name}"><option value="">any</option>${options.map((o) => html`<option value="${o}"${o === value ? html` selected` : ''}>${names[o] ?? o}</option>`)}</select></label>`;
}

export function registerJobs(app: FastifyInstance, ctx: UiContext): void {
  app.get('/jobs', (req, reply) => {
    const { filter, page, raw } = parseJobQuery(req.query as Record<string, unknown>);
    const limit = ctx.b.config.ui.pageSize;
    const { result, actions, labels } = ctx.b.read('list jobs', (j) => {
      const r = listJobs(j, filter, page, limit);
      const ids = r.jobs.map((x) => x.id);
      return { result: r, actions: actionsOfJobs(j, ids), labels: labelsOfJobs(j, ids) };
    });
    // The menus come from the config (no scan of the journal); a value from an older config still works in the URL.
    const c = ctx.b.config;
    const menu = (values: string[], current?: string) => [...new Set([...values, ...(current ? [current] : [])])].sort();
    const rules = menu(Object.keys(c.rules), raw.rule);
    const sources = menu(c.sources.map((s, i) => sourceName(s, i)), raw.source);
    const bands = menu(Object.keys(c.rules).flatMap((r) => ctx.b.bands(r).list.map((b) => b.name)), raw.band);
    const qs = (extra: Record<string, string | number>) => '?' + new URLSearchParams({ ...raw, ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, String(v)])) }).toString();
    const body = html`<h1>Jobs</h1>
<form method="get" action="/jobs" class="filters">
${select('rule', 'Rule', rules, raw.rule)} ${select('source', 'Source', sources, raw.source)} ${select('band', 'Band', bands, raw.band)}
${select('outcome', 'Outcome', Object.keys(OUTCOMES), raw.outcome, OUTCOMES)}
<label>From <input type="datetime-local" name="from" value="${raw.from ?? ''}"></label> <label>To <input type="datetime-local" name="to" value="${raw.to ?? ''}"></label>
<button type="submit">Filter</button> <a href="/jobs">Clear</a></form>
${result.jobs.length
    ? html`<table class="jobs" data-testid="jobs"><thead><tr><th></th><th>job</th><th>outcome</th><th>texts</th><th>actions</th></tr></thead><tbody>${result.jobs.map((job) => row(job, actions.get(job.id) ?? [], labels.get(job.id)))}</tbody></table>`
    : html`<p class="empty">No jobs${Object.keys(raw).length ? ' match these filters' : ' yet'}.</p>`}
<nav class="pager">${result.newerThan !== undefined ? html`<a href="/jobs${qs({ after: result.newerThan })}" rel="prev">← newer</a>` : ''}
${result.olderThan !== undefined ? html`<a href="/jobs${qs({ before: result.olderThan })}" rel="next">older →</a>` : ''}</nav>`;
    return ctx.send(req, reply, { title: 'Jobs', active: 'jobs', body });
  });
}
