/**
 * File operations that never overwrite and survive crashes: a name is reserved with link() (fails if taken),
 * copies go through a temp file that is fsynced before it gets its final name, and directories are fsynced
 * after entries change.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { sweepOnce, tempNameFor } from './temp-files.ts';

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** fsync a directory so a rename/link/unlink in it survives power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** `dir/base` if free, else `dir/stem-<tag>ext`, else `dir/stem-<tag>-<n>ext`. The caller still links no-clobber. */
export async function uniqueName(dir: string, base: string, tag: string | number): Promise<string> {
  await fsp.mkdir(dir, { recursive: true });
  const first = path.join(dir, base);
  if (!(await exists(first))) return first;
  const ext = path.extname(base);
  const stem = base.slice(0, base.length - ext.length);
  for (let n = 0; ; n++) {
    const candidate = path.join(dir, `${stem}-${tag}${n ? `-${n}` : ''}${ext}`);
    if (!(await exists(candidate))) return candidate;
  }
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Same inode, or same size and bytes: the move/copy already happened (e.g. before a crash). */
export async function sameContent(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fsp.stat(a), fsp.stat(b)]);
  if (sa.ino === sb.ino && sa.dev === sb.dev) return true;
  if (sa.size !== sb.size) return false;
  return (await sha256(a)) === (await sha256(b));
}

/** Copy `src` to a temp file beside `dest`, fsync it, and return the temp path (removed again if any step fails). */
async function stageCopy(src: string, dest: string): Promise<string> {
  await sweepOnce(path.dirname(dest));
  const tmp = tempNameFor(dest);
  try {
    await fsp.copyFile(src, tmp, fs.constants.COPYFILE_EXCL);
    const fh = await fsp.open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const st = await fsp.stat(src);
    await fsp.utimes(tmp, st.atime, st.mtime);
    return tmp;
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}

/** Give `from` the name `dest` without ever replacing an existing file (EEXIST if taken). */
async function linkNoClobber(from: string, dest: string): Promise<void> {
  await fsp.link(from, dest);
}

/** Copy through an fsynced temp file beside `dest`, then claim `dest` with link() (EEXIST if taken). */
async function copyNoClobber(src: string, dest: string): Promise<void> {
  const tmp = await stageCopy(src, dest);
  try {
    await linkNoClobber(tmp, dest);
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/** Move without overwriting: link + unlink on one device, fsynced copy + link + unlink across devices. */
export async function moveFile(src: string, dest: string): Promise<void> {
  try {
    await linkNoClobber(src, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw err;
    await copyNoClobber(src, dest);
  }
  await fsyncDir(path.dirname(dest));
  await fsp.unlink(src);
  await fsyncDir(path.dirname(src));
}

/** Copy without overwriting, through an fsynced temp file. */
export async function copyFile(src: string, dest: string): Promise<void> {
  await copyNoClobber(src, dest);
  await fsyncDir(path.dirname(dest));
}

/** Write a file atomically: temp + fsync + rename (replaces an older version of the same file); no temp file survives a failure. */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await sweepOnce(path.dirname(file));
  const tmp = tempNameFor(file);
  try {
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await fsyncDir(path.dirname(file));
}
