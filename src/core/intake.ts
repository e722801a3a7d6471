/**
 * What the core makes of a source's job before journalling it: the item's own texts and meta checked against the
 * config's `items` limits, and a `per-item` rule's demand for texts. A bad item is refused (HTTP intake: a 400) or
 * journalled as failed with its code (files and objects: the rule's `error` actions run, nothing is lost).
 */
import type { Config, Rule } from './config.ts';
import { PER_ITEM } from './config.ts';
import type { ErrorCode } from './errors.ts';
import { checkItemTexts } from './item.ts';
import { checkMeta } from './meta.ts';
import type { JobRequest } from './plugin.ts';

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
