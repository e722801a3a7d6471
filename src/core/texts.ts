/**
 * The texts a job is scored against: its own (embedded on demand through the pipeline's text batcher, shared with
 * every other caller, cached), else its rule's (embedded once at start-up). And scoring one image now (POST
 * /v1/score) through the same pipeline, bounded so that it cannot crowd out the journalled jobs.
 */
import type { Config } from './config.ts';
import { MatchdError, isMatchdError } from './errors.ts';
import { admit, ruleTexts } from './intake.ts';
import type { Matcher, TextEmbedding } from './matcher.ts';
import type { ScoreRequest, ScoreResult } from './plugin.ts';
import { scoreTexts } from './scoring.ts';

export class JobTexts {
  /** Rule texts, embedded once (rules with `texts: per-item` have none). */
  private readonly rules = new Map<string, TextEmbedding[]>();
  /** Scorings now in flight. */
  private now = 0;

  private constructor(private readonly config: Config, private readonly matcher: Matcher) {}

  static async embed(config: Config, matcher: Matcher): Promise<JobTexts> {
    const t = new JobTexts(config, matcher);
    for (const [name, rule] of Object.entries(config.rules)) {
      const texts = ruleTexts(rule);
      if (texts) t.rules.set(name, await matcher.embedTexts(texts));
    }
    return t;
  }

  /** A job's own texts, or its rule's; MATCHD_TEXTS_REQUIRED for neither (a rule made `per-item` since it was queued). */
  of(job: { rule: string; texts: string[] | null }): Promise<TextEmbedding[]> {
    if (job.texts) return this.matcher.pipeline.embedTexts(job.texts);
    const texts = this.rules.get(job.rule);
    if (texts) return Promise.resolve(texts);
    return Promise.reject(new MatchdError('MATCHD_TEXTS_REQUIRED', `rule '${job.rule}' scores only per-item texts (texts: per-item) and this job has none`));
  }

  /**
   * Score one image now: refused when the queue is full (`queued` at `model.queueSize`) or when as many are being
   * scored as the pipeline decodes ahead; the image and texts are embedded concurrently.
   */
  async scoreNow(rule: string, req: ScoreRequest, queued: number): Promise<ScoreResult> {
    const r = this.config.rules[rule];
    if (!r) return { ok: false, reason: 'unknown_rule', message: `unknown rule '${rule}'` };
    const item = admit(this.config, rule, { dedupeKey: '', image: req.image, ...(req.texts ? { texts: req.texts } : {}), onInvalid: 'refuse' });
    if (!item.ok) return { ok: false, reason: 'invalid', code: item.code, message: item.message, problems: item.problems };
    if (queued >= this.config.model.queueSize || this.now >= this.matcher.pipeline.decodeAhead) {
      return { ok: false, reason: 'backpressure', retryAfterMs: 1000, message: `the queue is full (${this.config.model.queueSize} jobs)` };
    }
    this.now++;
    try {
      const [image, texts] = await Promise.all([this.matcher.pipeline.embedImage(req.image.path), this.of({ rule, texts: item.texts ?? null })]);
      if (!image.ok) return { ok: false, reason: 'item', code: image.error.code, message: image.error.message };
      const results = scoreTexts(image.vector, texts, r.range ?? this.matcher.scoreMapping, r.bands ?? this.matcher.bands);
      const m = this.matcher.manifest;
      return { ok: true, rule, results, model: { name: m.name, version: m.version, provider: this.matcher.provider } };
    } catch (err) {
      const e = isMatchdError(err) ? err : new MatchdError('MATCHD_INTERNAL', String(err));
      return { ok: false, reason: 'item', code: e.code, message: e.message };
    } finally {
      this.now--;
    }
  }
}
