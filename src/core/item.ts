/**
 * A job's own texts and meta, and their limits (config `items`), checked the same way for every source: the webhook
 * turns problems into a 400, file and S3 sources into a per-item error with the code, the core's submit checks
 * again for plugins that did not. Texts beyond the model's token limit are not a problem here: they are truncated
 * and flagged when scored.
 */
import type { ErrorCode } from './errors.ts';
import { DEFAULT_META_LIMITS, checkMeta, type MetaLimits } from './meta.ts';

export interface ItemLimits {
  /** Most texts one item may bring. */
  maxTexts: number;
  /** Most characters (Unicode code points) per text. */
  maxTextChars: number;
  meta: MetaLimits;
}

export const DEFAULT_ITEM_LIMITS: ItemLimits = { maxTexts: 64, maxTextChars: 2000, meta: DEFAULT_META_LIMITS };

/** What is wrong with an item: one code (texts first), every problem listed. */
export interface ItemProblem {
  code: Extract<ErrorCode, 'MATCHD_TEXT_INVALID' | 'MATCHD_META_INVALID'>;
  message: string;
  problems: string[];
}

/** Listing 10,000 bad texts helps nobody: the first few, then a count. */
const MAX_LISTED = 10;

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Problems with `texts` as an item's own texts (empty when fine). */
export function checkItemTexts(texts: unknown, limits: Pick<ItemLimits, 'maxTexts' | 'maxTextChars'>): string[] {
  if (!Array.isArray(texts)) return [`texts must be a list of strings; got ${texts === null ? 'null' : typeof texts}`];
  if (texts.length === 0) return ['texts is empty: give at least one text, or leave texts out to use the rule\'s'];
  const problems: string[] = [];
  if (texts.length > limits.maxTexts) problems.push(`${texts.length} texts; at most ${limits.maxTexts} per item`);
  let bad = 0;
  texts.forEach((t: unknown, i) => {
    let p: string | undefined;
    if (typeof t !== 'string') p = `text ${i}: expected a string but received ${t === null ? 'null' : typeof t}`;
    else if (t.trim() === '') p = `text ${i}: empty or only whitespace`;
    else if (!t.isWellFormed()) p = `text ${i}: not well-formed Unicode (lone surrogate), i.e. not encodable as UTF-8`;
    else if (t.length > limits.maxTextChars && codePoints(t) > limits.maxTextChars) p = `text ${i}: ${codePoints(t)} characters; at most ${limits.maxTextChars}`;
    if (p && bad++ < MAX_LISTED) problems.push(p);
  });
  if (bad > MAX_LISTED) problems.push(`... and ${bad - MAX_LISTED} more bad texts`);
  return problems;
}

/** Everything wrong with an item, or undefined when its texts and meta are fine or absent; the code names texts first. */
export function checkItem(item: { texts?: unknown; meta?: unknown }, limits: ItemLimits): ItemProblem | undefined {
  const texts = item.texts === undefined ? [] : checkItemTexts(item.texts, limits);
  const meta = item.meta === undefined ? [] : checkMeta(item.meta, limits.meta);
  if (texts.length + meta.length === 0) return undefined;
  const problems = [...texts, ...meta];
  return { code: texts.length ? 'MATCHD_TEXT_INVALID' : 'MATCHD_META_INVALID', message: `invalid item: ${problems.join('; ')}`, problems };
}
