/** Shell-style globs as regular expressions, shared by sources that filter paths or keys. */

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Index of the bracket closing the one at `open`, or -1. */
function closing(glob: string, open: number, o: string, c: string): number {
  let depth = 0;
  for (let i = open; i < glob.length; i++) {
    if (glob[i] === '\\') i++;
    else if (glob[i] === o) depth++;
    else if (glob[i] === c && --depth === 0) return i;
  }
  return -1;
}

/** Split on top-level commas (brace alternatives may nest). */
function alternatives(body: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '\\') i++;
    else if (ch === '{') depth++;
    else if (ch === '}') depth--;
    else if (ch === ',' && depth === 0) {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  out.push(body.slice(start));
  return out;
}

function globSource(glob: string): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        const segmentStart = i === 0 || glob[i - 1] === '/';
        if (segmentStart && glob[i + 2] === '/') {
          re += '(?:[^/]*/)*';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      // a ']' right after '[' or '[!' is a literal member, as in POSIX
      const from = glob[i + 1] === '!' || glob[i + 1] === '^' ? i + 2 : i + 1;
      const end = glob.indexOf(']', from + 1);
      if (end < 0) re += '\\[';
      else {
        const negate = from === i + 2;
        const body = glob.slice(from, end).replace(/\\/g, '\\\\').replace(/^\^/, '\\^');
        re += `[${negate ? '^' : ''}${body}]`;
        i = end;
      }
    } else if (ch === '{') {
      const end = closing(glob, i, '{', '}');
      if (end < 0) re += '\\{';
      else {
        re += `(?:${alternatives(glob.slice(i + 1, end)).map(globSource).join('|')})`;
        i = end;
      }
    } else if (ch === '\\' && i + 1 < glob.length) re += escapeRe(glob[++i]!);
    else re += escapeRe(ch);
  }
  return re;
}

/** A shell-style glob (`*`, `?`, `**`, `[abc]`, `[!abc]`, `{a,b}`) as a whole-string, case-insensitive RegExp. */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${globSource(glob)}$`, 'i');
}

