/** Directory walk for the start-up scan and the periodic rescan. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { PathFilter } from './filter.ts';

export interface WalkOptions {
  recursive: boolean;
  filter: PathFilter;
  /** Called with the absolute path of each candidate file. */
  onFile(file: string): void;
  /** Called for each folder that cannot be listed (the root included); the walk goes on with the others. */
  onError(dir: string, err: NodeJS.ErrnoException): void;
  /** Start at this sub-folder ('/'-separated, relative to root); paths stay relative to root for the filter. */
  from?: string;
  /** Ends the walk early (stop()). */
  signal?: AbortSignal;
}

/** Lists the candidate files under `root`; resolves false when some folder could not be listed. */
export async function walk(root: string, opts: WalkOptions): Promise<boolean> {
  const { recursive, filter, onFile, onError, signal, from = '' } = opts;
  let complete = true;
  const pending: string[] = [from];
  while (pending.length) {
    if (signal?.aborted) return false;
    const dirRel = pending.pop()!;
    const dirAbs = dirRel ? path.join(root, dirRel) : root;
    try {
      const dir = await fs.opendir(dirAbs, { bufferSize: 64 });
      for await (const entry of dir) {
        if (signal?.aborted) return false;
        const rel = dirRel ? `${dirRel}/${entry.name}` : entry.name;
        if (filter.ignores(rel)) continue;
        if (entry.isDirectory()) {
          if (recursive) pending.push(rel);
        } else if (entry.isFile()) {
          if (filter.hasAllowedExtension(rel)) onFile(path.join(root, rel));
        } else {
          const link = entry.isSymbolicLink();
          if (!link && (entry.isFIFO() || entry.isSocket() || entry.isBlockDevice() || entry.isCharacterDevice())) continue;
          // links to files count (the watcher reports them too) but linked folders are not followed (cycles);
          // some file systems report no entry type at all, so those are stat'ed
          if (link && !filter.hasAllowedExtension(rel)) continue;
          const abs = path.join(root, rel);
          const st = await fs.stat(abs).catch(() => undefined);
          if (st?.isFile() && filter.hasAllowedExtension(rel)) onFile(abs);
          else if (st?.isDirectory() && !link && recursive) pending.push(rel);
        }
      }
    } catch (err) {
      complete = false;
      onError(dirAbs, err as NodeJS.ErrnoException);
    }
  }
  return complete;
}
