/**
 * The core's actions: move, copy, sidecar, log. Each is idempotent: re-running one after a crash finds the
 * work done (or half done) and finishes it, never duplicating an output.
 */
import { rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { MatchdError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { copyFile, exists, moveFile, sameContent, uniqueName, writeFileAtomic } from './fs-ops.ts';

/** What an action may read and record while it runs. */
export interface ActionContext {
  jobId: number;
  /** The job as journalled: source, rule, the sender's meta, the source's origin, outcome and the result document. */
  job: {
    source: string; rule: string; imagePath: string; meta: Record<string, unknown>; origin: Record<string, unknown>;
    outcome: string | null; result: Record<string, unknown> | null; createdAt: number;
  };
  /** 1 for the first try. */
  attempt: number;
  /** The clock the runner schedules with (a fake one in tests). */
  now(): number;
  /** Where the job's file is now (after an earlier move/copy), else its original path. */
  location: string;
  /** Persist a decision (like the destination name) before acting, so a retry makes the same one. */
  remember(payload: Record<string, unknown>): void;
  log: Logger;
}

/** An action's result: the file's new location when it moved or copied it. */
export type ActionResult = { location?: string };

/** A failure that retrying cannot fix (the action goes straight to dead). */
export class PermanentActionError extends MatchdError {
  constructor(message: string) {
    super('MATCHD_ACTION_FAILED', message);
  }
}

/** A failure to retry after a delay the action chose itself (its own schedule, or a server's Retry-After). */
export class RetryLaterError extends MatchdError {
  constructor(message: string, readonly retryAfterMs: number) {
    super('MATCHD_ACTION_FAILED', message);
  }
}

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

export type ActionKind = keyof typeof fileActions;
