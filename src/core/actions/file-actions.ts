/**
 * The core's actions: move, copy, sidecar, log. Each is idempotent: re-running one after a crash finds the
 * work done (or half done) and finishes it, never duplicating an output.
 */
import { rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { MatchdError } from '../errors.ts';
import { PermanentActionError, type ActionContext, type ActionResult } from './contract.ts';
import { copyFile, exists, moveFile, sameContent, uniqueName, writeFileAtomic } from './fs-ops.ts';

type Transfer = { src: string; dir: string; dest?: string; companions?: string[] };

/** The image, then its companions (texts files), each named after where the image went. */
async function transfer(kind: 'move' | 'copy', p: Transfer, ctx: ActionContext): Promise<ActionResult> {
  const dest = await transferImage(kind, p, ctx);
  for (const c of p.companions ?? []) await transferCompanion(kind, c, dest, ctx.jobId);
  return { location: dest };
}

async function transferImage(kind: 'move' | 'copy', p: Transfer, ctx: ActionContext): Promise<string> {
  const pick = async () => {
    const dest = await uniqueName(p.dir, path.basename(p.src), ctx.jobId);
    ctx.remember({ ...p, dest });
    return dest;
  };
  let dest = p.dest ?? (await pick());
  const srcThere = await exists(p.src);
  if (!srcThere) {
    if (await exists(dest)) return dest; // done before a crash
    throw new PermanentActionError(`cannot ${kind} ${p.src}: the file is gone`);
  }
  if (await exists(dest)) {
    if (await sameContent(p.src, dest)) {
      if (kind === 'move') await moveFinish(p.src);
      return dest;
    }
    dest = await pick(); // someone else's file took the name meanwhile
  }
  await place(kind, p.src, dest);
  return dest;
}

async function place(kind: 'move' | 'copy', src: string, dest: string): Promise<void> {
  try {
    await (kind === 'move' ? moveFile(src, dest) : copyFile(src, dest));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new MatchdError('MATCHD_ACTION_FAILED', `${dest} appeared while ${kind === 'move' ? 'moving' : 'copying'}; retrying with a new name`);
    }
    throw err;
  }
}

/**
 * `photo.txt` goes where `photo.jpg` went, as `<image's new stem>.txt`. Gone already: moved before a crash (or shared
 * with another image of the same stem that took it), so there is nothing left to do.
 */
async function transferCompanion(kind: 'move' | 'copy', src: string, imageDest: string, jobId: number): Promise<void> {
  if (!(await exists(src))) return;
  const dir = path.dirname(imageDest);
  let dest = path.join(dir, path.basename(imageDest, path.extname(imageDest)) + path.extname(src));
  if (await exists(dest)) {
    if (await sameContent(src, dest)) {
      if (kind === 'move') await moveFinish(src);
      return;
    }
    dest = await uniqueName(dir, path.basename(dest), jobId);
  }
  await place(kind, src, dest);
}

async function moveFinish(src: string): Promise<void> {
  await unlink(src).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export const fileActions = {
  move: (p: Record<string, unknown>, ctx: ActionContext) => transfer('move', p as Transfer, ctx),
  copy: (p: Record<string, unknown>, ctx: ActionContext) => transfer('copy', p as Transfer, ctx),

  /** `<file>.json` next to the job's file (or in `dir`), replaced atomically with the same content on retry. */
  async sidecar(p: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const dir = typeof p.dir === 'string' ? p.dir : path.dirname(ctx.location);
    await writeFileAtomic(path.join(dir, `${path.basename(ctx.location)}.json`), JSON.stringify(p.doc, null, 2) + '\n');
    return {};
  },

  /** Delete the job's temporary image copy (spooled upload or download) once everything else is done. */
  async discard(p: Record<string, unknown>): Promise<ActionResult> {
    await rm(String(p.path), { force: true });
    return {};
  },

  async log(p: Record<string, unknown>, ctx: ActionContext): Promise<ActionResult> {
    const level = (p.level as 'info' | 'warn' | 'error') ?? 'info';
    ctx.log[level]({ jobId: ctx.jobId, file: ctx.location, ...(p.doc as object) }, 'match result');
    return {};
  },
};
