/**
 * What the core makes of a source's job: the item's own texts and meta checked against the config's `items` limits,
 * and a `per-item` rule's demand for texts. A bad item is refused (HTTP intake: a 400) or journalled as failed with
 * its code (files and objects: the rule's `error` actions run, nothing is lost). Then the job is journalled, durably,
 * before the source moves on — or refused with a reason the source can pass on (backpressure, unknown rule).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config, Rule } from './config.ts';
import { PER_ITEM } from './config.ts';
import type { ErrorCode } from './errors.ts';
import { checkItemTexts } from './item.ts';
import type { JournalApi } from './journal-api.ts';
import type { JournalHealth } from './journal-health.ts';
import { checkMeta } from './meta.ts';
import type { Metrics } from './metrics.ts';
import type { JobRequest, SubmitResult } from './plugin.ts';

export type Admission =
  | { ok: true; texts?: string[]; meta: Record<string, unknown>; failed?: { code: string; message: string } }
  | { ok: false; code: ErrorCode; message: string; problems: string[] };

/** The texts a rule scores a job without its own against, or undefined for `texts: per-item`. */
export function ruleTexts(rule: Rule): string[] | undefined {
  return rule.texts === PER_ITEM ? undefined : rule.texts;
}

export function admit(config: Config, ruleName: string, req: JobRequest): Admission {
  const rule = config.rules[ruleName]!;
  const textProblems = req.texts === undefined ? [] : checkItemTexts(req.texts, config.items);
  const metaProblems = req.meta === undefined ? [] : checkMeta(req.meta, config.items.meta);
  const refuse = req.onInvalid === 'refuse';
  let failed = req.failed;
  if (textProblems.length || metaProblems.length) {
    const problems = [...textProblems, ...metaProblems];
    const code: ErrorCode = textProblems.length ? 'MATCHD_TEXT_INVALID' : 'MATCHD_META_INVALID';
    const message = `invalid item: ${problems.join('; ')}`;
    if (refuse) return { ok: false, code, message, problems };
    failed ??= { code, message };
  }
  const texts = textProblems.length ? undefined : req.texts;
  const meta = metaProblems.length || !req.meta ? {} : req.meta;
  if (!texts && !failed && ruleTexts(rule) === undefined) {
    const message = `rule '${ruleName}' scores only per-item texts (texts: per-item) and this item brought none`;
    if (refuse) return { ok: false, code: 'MATCHD_TEXTS_REQUIRED', message, problems: [message] };
    failed = { code: 'MATCHD_TEXTS_REQUIRED', message };
  }
  return { ok: true, ...(texts ? { texts } : {}), meta, ...(failed ? { failed } : {}) };
}

export interface IntakeDeps {
  config: Config;
  metrics: Metrics;
  journal: JournalApi;
  health: JournalHealth;
}

/** A source's job, journalled durably before this returns, or refused with a reason. */
export function journalJob(d: IntakeDeps, source: string, defaultRule: string, req: JobRequest): SubmitResult {
  const { config, metrics, journal, health } = d;
  const rule = req.rule ?? defaultRule;
  if (!(rule in config.rules)) {
    metrics.submits.inc({ source, result: 'unknown_rule' });
    return { accepted: false, reason: 'unknown_rule', message: `unknown rule '${rule}'` };
  }
  const paused = (): SubmitResult => {
    metrics.submits.inc({ source, result: 'backpressure' });
    return { accepted: false, reason: 'backpressure', retryAfterMs: 5000, message: health.pausedMessage };
  };
  if (!health.ok) return paused();
  if (health.run('count queued jobs', () => journal.queuedCount(), Infinity) >= config.model.queueSize) {
    if (!health.ok) return paused();
    metrics.submits.inc({ source, result: 'backpressure' });
    return { accepted: false, reason: 'backpressure', retryAfterMs: 1000, message: `the queue is full (${config.model.queueSize} jobs)` };
  }
  const item = admit(config, rule, req);
  if (!item.ok) {
    metrics.submits.inc({ source, result: 'invalid' });
    return { accepted: false, reason: 'invalid', code: item.code, problems: item.problems, message: item.message };
  }
  const extra = {
    ...(req.actions?.length ? { actions: req.actions } : {}),
    ...(req.image.temporary ? { temporary: true } : {}),
    ...(item.failed ? { failed: item.failed } : {}),
    ...(req.companions?.length ? { companions: req.companions } : {}),
  };
  const entry = health.run('enqueue', () => journal.enqueue({
    dedupeKey: req.dedupeKey, source, rule, imagePath: req.image.path, meta: item.meta, origin: req.origin ?? {}, ...(item.texts ? { texts: item.texts } : {}), extra,
  }), null);
  if (!entry) return paused();
  const { jobId, duplicate } = entry;
  // A duplicate's temporary copy is not the journalled job's file (two intake nodes downloaded the same object).
  if (duplicate && req.image.temporary) {
    const kept = health.run('read the duplicate\'s job', () => journal.get(jobId)?.imagePath, undefined);
    if (kept !== undefined && path.resolve(kept) !== path.resolve(req.image.path)) fs.rmSync(req.image.path, { force: true });
  }
  metrics.submits.inc({ source, result: duplicate ? 'duplicate' : 'accepted' });
  return { accepted: true, jobId: String(jobId), duplicate };
}
