/** Which paths under a watched root are candidates: ignore globs plus an extension allow-list. */
import path from 'node:path';
import { globToRegExp } from '../../util/glob.ts';

export { globToRegExp } from '../../util/glob.ts';

/** Always ignored (config globs are added): hidden files, partial downloads, Office lock files, Synology thumbnail folders. */
export const DEFAULT_IGNORE: readonly string[] = ['.*', '*.tmp', '*.part', '*.crdownload', '~$*', '@eaDir'];

/** Image extensions accepted by default (content is sniffed later by the core; this only skips obvious non-images). */
export const DEFAULT_EXTENSIONS: readonly string[] = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'heic', 'heif', 'bmp'];

export interface FilterOptions {
  /** Globs added to DEFAULT_IGNORE. */
  ignore?: readonly string[];
  /** Allowed extensions (with or without the dot, any case); empty = every file. */
  extensions?: readonly string[];
  /** Files that are never jobs whatever their extension (companion texts files, manifests), by name. */
  notJobs?: (name: string) => boolean;
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
  private readonly notJobs: ((name: string) => boolean) | undefined;

  constructor({ ignore = [], extensions = DEFAULT_EXTENSIONS, notJobs }: FilterOptions = {}) {
    this.notJobs = notJobs;
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

  /** True when the extension of `rel` is allowed (always, when the allow-list is empty) and its name may be a job. */
  hasAllowedExtension(rel: string): boolean {
    if (this.notJobs?.(path.posix.basename(rel))) return false;
    if (!this.extensions) return true;
    return this.extensions.has(path.posix.extname(rel).slice(1).toLowerCase());
  }

  /** True when a file at `rel` is a candidate. */
  acceptsFile(rel: string): boolean {
    return rel !== '' && this.hasAllowedExtension(rel) && !this.ignores(rel);
  }
}
