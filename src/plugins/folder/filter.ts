/** Which paths under a watched root are candidates: ignore globs plus an extension allow-list. */
import path from 'node:path';

/** Always ignored (config globs are added): hidden files, partial downloads, Office lock files, Synology thumbnail folders. */
export const DEFAULT_IGNORE: readonly string[] = ['.*', '*.tmp', '*.part', '*.crdownload', '~$*', '@eaDir'];

/** Image extensions accepted by default (content is sniffed later by the core; this only skips obvious non-images). */
export const DEFAULT_EXTENSIONS: readonly string[] = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'heic', 'heif', 'bmp'];

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

export interface FilterOptions {
  /** Globs added to DEFAULT_IGNORE. */
  ignore?: readonly string[];
  /** Allowed extensions (with or without the dot, any case); empty = every file. */
  extensions?: readonly string[];
}

/**
 * Decides on paths relative to a root ('/'-separated). A glob without '/' (a trailing one aside) is matched against
 * every path segment (so `@eaDir` hides the folder and all below it, `.*` hides dot-folders too); a glob with '/' is
 * matched against the path from the root and each of its parent folders.
 */
export class PathFilter {
  private readonly names: RegExp[] = [];
  private readonly paths: RegExp[] = [];
  private readonly extensions: Set<string> | undefined;

  constructor({ ignore = [], extensions = DEFAULT_EXTENSIONS }: FilterOptions = {}) {
    for (const raw of [...DEFAULT_IGNORE, ...ignore]) {
      // a trailing '/' (folder) does not anchor; a leading or inner one does, as in .gitignore
      const trimmed = raw.replace(/\/+$/, '');
      const glob = trimmed.replace(/^\/+/, '');
      if (!glob) continue;
      (trimmed.includes('/') ? this.paths : this.names).push(globToRegExp(glob));
    }
    const exts = extensions.map((e) => e.replace(/^\./, '').toLowerCase()).filter(Boolean);
    this.extensions = exts.length ? new Set(exts) : undefined;
  }

  /** True when `rel` (a file or folder) or one of its parent folders matches an ignore glob. */
  ignores(rel: string): boolean {
    if (!rel) return false;
    const segments = rel.split('/');
    for (let i = 0; i < segments.length; i++) {
      if (this.names.some((re) => re.test(segments[i]!))) return true;
      if (this.paths.length) {
        const prefix = segments.slice(0, i + 1).join('/');
        if (this.paths.some((re) => re.test(prefix))) return true;
      }
    }
    return false;
  }

  /** True when the extension of `rel` is allowed (always, when the allow-list is empty). */
  hasAllowedExtension(rel: string): boolean {
    if (!this.extensions) return true;
    return this.extensions.has(path.posix.extname(rel).slice(1).toLowerCase());
  }

  /** True when a file at `rel` is a candidate. */
  acceptsFile(rel: string): boolean {
    return rel !== '' && this.hasAllowedExtension(rel) && !this.ignores(rel);
  }
}
