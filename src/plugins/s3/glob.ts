/** Key filters: shell-style globs (`*`, `**`, `?`, `{a,b}`, `[abc]`) matched case-insensitively against the whole key below the prefix. */

import { globToRegExp } from '../../util/glob.ts';

export { globToRegExp } from '../../util/glob.ts';

/** Our own result sidecars and objects' texts companions are never images to score. */
const ALWAYS_EXCLUDED = /\.(matchd|texts)\.json$/i;

export class KeyFilter {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];
  constructor(include: readonly string[], exclude: readonly string[]) {
    this.include = include.map(globToRegExp);
    this.exclude = exclude.map(globToRegExp);
  }

  /** `rel`: the key below the source prefix. */
  accepts(rel: string): boolean {
    if (!rel || rel.endsWith('/') || ALWAYS_EXCLUDED.test(rel)) return false; // folder markers, sidecars, companions
    if (this.include.length && !this.include.some((re) => re.test(rel))) return false;
    return !this.exclude.some((re) => re.test(rel));
  }
}
