/**
 * The one way matchd reports several problems at once: a heading, then one "  - problem" line each, every problem also
 * in `details.problems` (so callers and tests read the list, not the text). Zod issues become problems here too.
 */
import type { ZodError } from 'zod';
import { MatchdError, type ErrorCode } from './errors.ts';

/** "heading:\n  - a\n  - b". A problem that spans lines keeps its continuation lines under its own bullet. */
export function problemsText(heading: string, problems: readonly string[]): string {
  return `${heading}:\n${problems.map((p) => `  - ${p.replace(/\n/g, '\n    ')}`).join('\n')}`;
}

/** An error with `code` whose message lists every problem under `heading`; `details` adds to `{ problems }`. */
export function problemsError(code: ErrorCode, heading: string, problems: readonly string[], details: Record<string, unknown> = {}): MatchdError {
  return new MatchdError(code, problemsText(heading, problems), { ...details, problems: [...problems] });
}

/** Zod issues as "path: message" problems; `prefix` names where the parsed value sits (`sources.0.options`). */
export function zodProblems(err: ZodError, prefix = ''): string[] {
  return err.issues.map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(root)'}: ${i.message}`);
}
