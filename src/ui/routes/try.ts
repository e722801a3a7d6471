/**
 * Try it: upload (or drop) an image, type texts, pick a rule, and see cosine, score and band per text. The image is
 * spooled under `ui.uploadBytes`, scored by the daemon's `score()` — the same batches, text cache and queue limits as
 * POST /v1/score and every job — and deleted before the answer. Nothing is journalled and no action runs.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { MatchdError } from '../../core/errors.ts';
import { ruleTexts } from '../../core/intake.ts';
import type { ScoreResult } from '../../core/plugin.ts';
import type { UiContext } from '../context.ts';
import { html, num, type Flash, type Html } from '../html.ts';
import { checkToken } from '../csrf.ts';

interface TryForm {
  rule: string;
  texts: string;
}

function bad(message: string, status = 400): MatchdError {
  return new MatchdError('MATCHD_REQUEST_INVALID', message, { status });
}

/** A small preview of the uploaded image, inline (the upload itself is deleted before the page is sent). */
async function preview(file: string): Promise<string | undefined> {
  try {
    const jpeg = await sharp(file, { failOn: 'error', pages: 1, limitInputPixels: 50_000_000 }).rotate().resize(320, 320, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  } catch {
    return undefined;
  }
}

export function registerTry(app: FastifyInstance, ctx: UiContext): void {
  const rules = Object.keys(ctx.b.config.rules);
  const spool = ctx.b.spoolDir;

  const render = (req: FastifyRequest, reply: FastifyReply, form: TryForm, result?: Html, flash?: Flash, status?: number) => {
    const m = ctx.b.model();
    const body = html`<h1>Try it</h1>
<form method="post" action="/try" enctype="multipart/form-data" class="try" data-testid="try-form">
<input type="hidden" name="_csrf" value="${ctx.session(req).csrf}">
<label class="drop" data-drop>Image <input type="file" name="image" accept="image/*" required><span class="hint">or drop one here</span><img class="preview" alt="" hidden></label>
<label>Texts, one per line <small>(empty: the rule's own)</small><textarea name="texts" rows="4">${form.texts}</textarea></label>
<label>Rule <select name="rule">${rules.map((r) => html`<option value="${r}"${r === form.rule ? html` selected` : ''}>${r}</option>`)}</select></label>
<p><small>Model: ${m.name} ${m.version} (${m.provider}) — the daemon's own, through the same queue as every job.</small></p>
<button type="submit">Score</button></form>${result ?? ''}`;
    return ctx.send(req, reply, { title: 'Try it', active: 'try', body, flash, ...(status ? { status } : {}) });
  };

  app.get('/try', (req, reply) => render(req, reply, { rule: rules[0]!, texts: '' }));

  app.post('/try', async (req, reply) => {
    if (!req.isMultipart()) throw bad('the form must be sent as multipart/form-data', 415);
    // A token in a header was checked before the route; otherwise the form's first field must be it, before any file.
    let verified = req.headers['x-csrf-token'] !== undefined;
    const form: TryForm = { rule: rules[0]!, texts: '' };
    let file: string | undefined;
    try {
      for await (const part of req.parts()) {
        if (part.type === 'field') {
          const value = typeof part.value === 'string' ? part.value : String(part.value);
          if (part.fieldname === '_csrf') {
            checkToken(req, value);
            verified = true;
          } else if (!verified) {
            checkToken(req, undefined);
          } else if (part.fieldname === 'rule' || part.fieldname === 'texts') {
            form[part.fieldname] = value;
          } else throw bad(`unknown field '${part.fieldname.slice(0, 40)}'`);
          continue;
        }
        if (!verified) checkToken(req, undefined);
        if (part.fieldname !== 'image' || file) throw bad('one file, in the field named image');
        if (!part.filename) {
          part.file.resume(); // an empty file input
          continue;
        }
        file = path.join(spool, `${randomUUID()}.upload`);
        await pipeline(part.file, fs.createWriteStream(file, { flags: 'wx' }));
      }
      if (!verified) checkToken(req, undefined);
      if (!rules.includes(form.rule)) throw bad(`rule: no rule '${form.rule.slice(0, 100)}' (rules: ${rules.join(', ')})`);
      if (!file) return render(req, reply, form, undefined, { kind: 'error', text: 'MATCHD_REQUEST_INVALID: choose or drop an image first' }, 400);
      const texts = form.texts.split(/\r?\n/).map((t) => t.trim()).filter((t) => t !== '');
      if (!texts.length && !ruleTexts(ctx.b.config.rules[form.rule]!)) {
        return render(req, reply, form, undefined, { kind: 'error', text: `MATCHD_TEXTS_REQUIRED: rule '${form.rule}' has no texts of its own (texts: per-item); type at least one` }, 400);
      }
      const r: ScoreResult = await ctx.b.score(form.rule, { image: { path: file }, ...(texts.length ? { texts } : {}), rule: form.rule });
      if (!r.ok) {
        const code = 'code' in r ? r.code : r.reason === 'backpressure' ? 'MATCHD_RATE_LIMITED' : 'MATCHD_REQUEST_INVALID';
        const status = r.reason === 'backpressure' ? 429 : r.reason === 'stopping' ? 503 : r.reason === 'item' ? 422 : 400;
        const problems = 'problems' in r && r.problems?.length ? ` (${r.problems.join('; ')})` : '';
        return render(req, reply, form, undefined, { kind: 'error', text: `${code}: ${r.message}${problems}` }, status);
      }
      const img = await preview(file);
      const table = html`<section class="result" data-testid="try-result"><h2>Scores <small>rule ${r.rule}, model ${r.model.name}</small></h2>
${img ? html`<img class="uploaded" src="${img}" alt="the uploaded image">` : ''}
<table class="scores"><thead><tr><th>text</th><th>cosine</th><th>score</th><th>band</th></tr></thead><tbody>${r.results.map((x) => html`<tr>
<td>${x.text}${x.truncated ? html` <small>(truncated)</small>` : ''}</td><td class="n">${num(x.cosine)}</td><td class="n">${num(x.score)}</td><td><span class="band band-${x.band}">${x.band}</span></td></tr>`)}</tbody></table></section>`;
      return render(req, reply, form, table);
    } finally {
      if (file) await rm(file, { force: true });
    }
  });
}
