/**
 * Stability tracking shared by watcher events and directory walks: a candidate is submitted only once its size,
 * mtime and inode stayed the same for `stabilityMs` and its mtime is `minAgeMs` old, so files still being copied
 * are not read. Events and walks are only hints (`observe`); the stat decides.
 */
import fs from 'node:fs/promises';

/** The identity of one version of a file. */
export interface FileVersion {
  size: number;
  mtimeMs: number;
  /** Decimal string: inode numbers can exceed 2^53. */
  ino: string;
}

/**
 * What became of a submit: done with this version, stop for good, try again at `retryAt` (no submits at all
 * before: the queue is full), or try this file again at `waitUntil` (it waits for something of its own, e.g. a
 * companion texts file still being written; other files go on).
 */
export type Verdict = 'accepted' | 'halt' | { retryAt: number } | { waitUntil: number };

export interface TrackerOptions {
  stabilityMs: number;
  minAgeMs: number;
  /** The dedupe key of a version. */
  keyOf(file: string, v: FileVersion): string;
  /** True when the key was journalled before (an earlier run): such versions are settled without waiting. */
  isKnown(key: string): boolean;
  /** Hand over a stable file. */
  submit(file: string, v: FileVersion, key: string): Verdict | Promise<Verdict>;
  /** A stat failed for a reason other than the file being gone. */
  onError(file: string, err: NodeJS.ErrnoException): void;
  /** How many stats run at once. */
  concurrency?: number;
  now?: () => number;
}

interface Candidate {
  v?: FileVersion;
  key?: string;
  /** When the current version was first seen. */
  stableSince: number;
  /** Not submitted again before this (a `waitUntil` verdict). */
  notBefore?: number;
}

const GONE = new Set(['ENOENT', 'ENOTDIR']);

/** Tracks candidate files until they are stable, then submits each version once. */
export class Tracker {
  private readonly candidates = new Map<string, Candidate>();
  /** path → key of the version last submitted or found known, so unchanged files are not tracked again. */
  private readonly settled = new Map<string, string>();
  private pausedUntil = 0;
  private halted = false;
  /** Submits run one at a time: a verdict (backpressure, halt) must be seen by the next candidate before it submits. */
  private submitting: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly opts: TrackerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Number of files waiting (changing, not old enough, or refused by backpressure). */
  get pending(): number {
    return this.candidates.size;
  }

  /** True once a submit answered 'halt': nothing more is submitted. */
  get isHalted(): boolean {
    return this.halted;
  }

  /** The file may be new or changed: stat it on the next check. */
  observe(file: string): void {
    if (!this.candidates.has(file)) this.candidates.set(file, { stableSince: this.now() });
  }

  /** The file is gone. */
  forget(file: string): void {
    this.candidates.delete(file);
    this.settled.delete(file);
  }

  /** A folder is gone: forget everything below it. */
  forgetUnder(dir: string): void {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    for (const map of [this.candidates, this.settled]) {
      for (const file of map.keys()) if (file.startsWith(prefix)) map.delete(file);
    }
  }

  /** Drop settled entries a complete walk no longer found (keeps the map from growing with deleted files). */
  pruneSettled(keep: (file: string) => boolean): void {
    for (const file of this.settled.keys()) if (!keep(file)) this.settled.delete(file);
  }

  /** Stat every candidate once; submit those that are stable and old enough. Never throws. */
  async check(): Promise<void> {
    if (this.halted || this.now() < this.pausedUntil) return;
    const files = [...this.candidates.keys()];
    const width = this.opts.concurrency ?? 16;
    for (let i = 0; i < files.length && !this.halted && this.now() >= this.pausedUntil; i += width) {
      await Promise.all(files.slice(i, i + width).map((f) => this.checkOne(f)));
    }
  }

  private async checkOne(file: string): Promise<void> {
    const startedAt = this.now();
    let v: FileVersion;
    try {
      const st = await fs.stat(file, { bigint: true });
      if (!st.isFile()) {
        this.forget(file);
        return;
      }
      v = { size: Number(st.size), mtimeMs: Number(st.mtimeNs) / 1e6, ino: st.ino.toString() };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (this.candidates.has(file)) {
        this.forget(file);
        if (!GONE.has(e.code ?? '')) this.opts.onError(file, e);
      }
      return;
    }
    const c = this.candidates.get(file);
    if (!c) return; // forgotten while the stat ran
    try {
      await this.decide(file, c, v, startedAt);
    } catch (err) {
      this.candidates.delete(file);
      this.opts.onError(file, err as NodeJS.ErrnoException);
    }
  }

  private async decide(file: string, c: Candidate, v: FileVersion, statStartedAt: number): Promise<void> {
    const now = this.now();
    if (!c.v || c.v.size !== v.size || c.v.mtimeMs !== v.mtimeMs || c.v.ino !== v.ino) {
      const key = this.opts.keyOf(file, v);
      if (this.settled.get(file) === key || this.opts.isKnown(key)) {
        this.settled.set(file, key);
        this.candidates.delete(file);
        return;
      }
      // the window starts when the change was seen (not when the stat was issued): conservative
      Object.assign(c, { v, key, stableSince: now, notBefore: undefined });
      return;
    }
    // unchanged between the stat that set stableSince and this one, which saw the file at or after statStartedAt
    if (statStartedAt - c.stableSince < this.opts.stabilityMs) return;
    // an mtime in the future (skewed camera clock kept by `cp -p`) cannot tell an age: count from when it was seen
    const age = v.mtimeMs > now ? statStartedAt - c.stableSince : now - v.mtimeMs;
    if (age < this.opts.minAgeMs) return;
    if (this.halted || now < this.pausedUntil || (c.notBefore !== undefined && now < c.notBefore)) return;
    const turn = this.submitting.then(() => this.submitOne(file, c));
    this.submitting = turn.catch(() => {});
    await turn;
  }

  private async submitOne(file: string, c: Candidate): Promise<void> {
    const now = this.now();
    if (this.halted || now < this.pausedUntil || this.candidates.get(file) !== c) return;
    const verdict = await this.opts.submit(file, c.v!, c.key!);
    if (verdict === 'accepted') {
      this.settled.set(file, c.key!);
      if (this.candidates.get(file) === c) this.candidates.delete(file);
    } else if (verdict === 'halt') {
      this.halted = true;
    } else if ('waitUntil' in verdict) {
      c.notBefore = verdict.waitUntil;
    } else {
      // the queue is full for everyone: pause all submits rather than have each candidate refused in turn
      this.pausedUntil = Math.max(this.pausedUntil, verdict.retryAt);
    }
  }
}
