/** Key filters: shell-style globs (`*`, `**`, `?`, `{a,b}`, `[abc]`) matched case-insensitively against the whole key below the prefix. */

function source(glob: string): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        if ((i === 0 || glob[i - 1] === '/') && glob[i + 2] === '/') {
          re += '(?:[^/]*/)*';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${glob.slice(i + 1, end).split(',').map(source).join('|')})`;
        i = end;
      }
    } else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return re;
}

export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${source(glob)}$`, 'i');
}

/** Our own result sidecars are never images to score. */
const ALWAYS_EXCLUDED = /\.matchd\.json$/i;

export class KeyFilter {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];
  constructor(include: readonly string[], exclude: readonly string[]) {
    this.include = include.map(globToRegExp);
    this.exclude = exclude.map(globToRegExp);
  }

  /** `rel`: the key below the source prefix. */
  accepts(rel: string): boolean {
    if (!rel || rel.endsWith('/') || ALWAYS_EXCLUDED.test(rel)) return false; // folder markers, sidecars
    if (this.include.length && !this.include.some((re) => re.test(rel))) return false;
    return !this.exclude.some((re) => re.test(rel));
  }
}
