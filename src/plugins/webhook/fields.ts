/**
 * A request's fields other than the image — `rule`, `texts`, `meta`, `callbackUrl` — from a JSON body or multipart
 * fields, checked once here. Every problem is listed in one 400 (`error.problems`), texts and meta against the
 * config's `items` limits (the core's check, the same for every source).
 */
import { MatchdError } from '../../core/errors.ts';
import type { ItemProblem } from '../../core/plugin.ts';

export interface JobFields {
  rule?: string;
  texts?: string[];
  meta?: Record<string, unknown>;
  callbackUrl?: string;
}

export interface FieldRules {
  /** Rules a request may name (undefined: any). */
  rules?: readonly string[];
  /** The core's item check (texts and meta limits). */
  checkItem(item: { texts?: unknown; meta?: unknown }): ItemProblem | undefined;
  /** Normalises a callback URL or throws MATCHD_URL_REFUSED (its form; addresses are checked when sending). */
  checkUrl(url: string): string;
  /** Whether the caller may ask for callbacks (it has a callbackSecret); the reason when not. */
  callbacks: { allowed: true } | { allowed: false; why: string };
  /** Which fields this route takes. */
  accepts: readonly (keyof JobFields)[];
}

export const bad = (message: string, status = 400, problems?: string[]) =>
  new MatchdError('MATCHD_REQUEST_INVALID', message, { status, ...(problems ? { problems } : {}) });

/** Multipart carries only strings: `texts` as a JSON array, or `text` fields, one text each; `meta` as JSON. */
export function fromMultipart(raw: Map<string, string[]>): { body: Record<string, unknown>; problems: string[] } {
  const body: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, values] of raw) {
    if (name === 'text') continue;
    if (values.length > 1) problems.push(`field '${name}' given ${values.length} times`);
    const v = values[0]!;
    if (name === 'meta' || name === 'texts') {
      try {
        body[name] = JSON.parse(v);
      } catch {
        problems.push(name === 'meta' ? 'meta must be a JSON object' : 'texts must be a JSON array of strings (or send one `text` field per text)');
      }
    } else body[name] = v;
  }
  const single = raw.get('text');
  if (single) {
    if (body.texts !== undefined) problems.push('give texts either as one `texts` JSON field or as `text` fields, not both');
    else body.texts = single;
  }
  return { body, problems };
}

/** The fields of a request body; throws one 400 listing every problem. */
export function parseFields(body: Record<string, unknown>, rules: FieldRules, earlier: string[] = []): JobFields {
  const problems = [...earlier];
  const out: JobFields = {};
  const known = new Set<string>(['image', 'imageUrl', ...rules.accepts]);
  for (const k of Object.keys(body)) if (!known.has(k)) problems.push(`unknown field '${k.slice(0, 40)}' (fields: image or imageUrl, ${rules.accepts.join(', ')})`);
  if (body.rule !== undefined) {
    if (typeof body.rule !== 'string' || !body.rule) problems.push('rule must be a rule name');
    else if (rules.rules && !rules.rules.includes(body.rule)) problems.push(`rule '${body.rule}' may not be used here (allowed: ${rules.rules.join(', ')})`);
    else out.rule = body.rule;
  }
  const item = rules.checkItem({ texts: body.texts, meta: body.meta });
  const others = problems.length;
  if (item) problems.push(...item.problems);
  else {
    if (body.texts !== undefined) out.texts = body.texts as string[];
    if (body.meta !== undefined) out.meta = body.meta as Record<string, unknown>;
  }
  if (body.callbackUrl !== undefined) {
    if (typeof body.callbackUrl !== 'string') problems.push('callbackUrl must be a URL');
    else if (!rules.callbacks.allowed) problems.push(rules.callbacks.why);
    else {
      try {
        out.callbackUrl = rules.checkUrl(body.callbackUrl);
      } catch (err) {
        // A refused URL keeps its own code (MATCHD_URL_REFUSED) when it is the only problem.
        if (problems.length === 0) throw err;
        problems.push((err as Error).message);
      }
    }
  }
  if (problems.length) {
    const message = problems.length === 1 ? problems[0]! : `${problems.length} problems: ${problems.join('; ')}`;
    // Only the texts or meta are wrong: say so with their code (MATCHD_TEXT_INVALID, MATCHD_META_INVALID).
    if (item && others === 0 && problems.length === item.problems.length) throw new MatchdError(item.code, message, { status: 400, problems });
    throw bad(message, 400, problems);
  }
  return out;
}
