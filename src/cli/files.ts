/**
 * What `matchd score` reads: the image files of a folder — and what it leaves out, with the reason, so nothing is
 * skipped silently — and the check that an IMAGE argument is a regular file before anything opens it (a FIFO, a
 * device or a socket would block a read forever or stream without end).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MatchdError } from '../core/errors.ts';

export const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif|heic|heif|bmp)$/i;

export type SkipReason = 'not an image extension' | 'hidden' | 'symlink (not followed)' | 'not a regular file';

export interface Listing {
  images: string[];
  skipped: { file: string; why: SkipReason }[];
}

function kindOf(e: fs.Dirent): string {
  if (e.isFIFO()) return 'named pipe (FIFO)';
  if (e.isSocket()) return 'socket';
  if (e.isCharacterDevice() || e.isBlockDevice()) return 'device';
  return 'special file';
}

/** The image files under `dir` (sorted), and every other file left out with why; folders are walked, not listed. */
export function listImageFiles(dir: string, recursive: boolean): Listing {
  const out: Listing = { images: [], skipped: [] };
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive })) {
    if (e.isDirectory()) continue;
    const file = path.join(e.parentPath ?? dir, e.name);
    if (e.isSymbolicLink()) out.skipped.push({ file, why: 'symlink (not followed)' });
    else if (!e.isFile()) out.skipped.push({ file: `${file} (${kindOf(e)})`, why: 'not a regular file' });
    else if (e.name.startsWith('.')) out.skipped.push({ file, why: 'hidden' });
    else if (!IMAGE_EXT.test(e.name)) out.skipped.push({ file, why: 'not an image extension' });
    else out.images.push(file);
  }
  out.images.sort();
  out.skipped.sort((a, b) => a.file.localeCompare(b.file));
  return out;
}

/** One stderr line summing up what was skipped (by reason), or '' when nothing was. */
export function skippedSummary(skipped: Listing['skipped'], verbose: boolean): string {
  if (!skipped.length) return '';
  const counts = new Map<SkipReason, number>();
  for (const s of skipped) counts.set(s.why, (counts.get(s.why) ?? 0) + 1);
  const by = [...counts].map(([why, n]) => `${n} ${why}`).join(', ');
  const lines = [`matchd: skipped ${skipped.length} file(s): ${by}${verbose ? '' : ' (--verbose lists them)'}`];
  if (verbose) for (const s of skipped) lines.push(`matchd: skipped ${s.file}: ${s.why}`);
  return lines.join('\n') + '\n';
}

/** Refuse an IMAGE argument that is not a regular file (checked with stat, before it is opened). */
export function assertRegularFile(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MatchdError('MATCHD_IMAGE_DECODE', `image ${JSON.stringify(file)}: ${code === 'ENOENT' ? 'file not found' : `cannot stat (${code})`}`, { input: file });
  }
  if (st.isFile()) return;
  const kind = st.isFIFO() ? 'a named pipe (FIFO)' : st.isDirectory() ? 'a directory' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a file';
  throw new MatchdError('MATCHD_IMAGE_DECODE', `image ${JSON.stringify(file)} is ${kind}, not a regular file; refusing to read it`, { input: file });
}
