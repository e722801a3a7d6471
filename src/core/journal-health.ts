/**
 * Journal faults at run time. Every journal call the daemon makes from a timer, a source or the action runner goes
 * through `run`, so a write error can never become an uncaught exception. A full disk (SQLITE_FULL) or an I/O error
 * pauses intake, scoring and actions and marks /healthz down; a probe write every second (with enough free space
 * on the journal's filesystem) ends the pause by itself. Corruption found at run time (SQLITE_CORRUPT) pauses the
 * same way but is not retried: it needs `matchd journal check` / `recover` (see journal-file.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MatchdError, type ErrorCode } from './errors.ts';
import { recoveryHint } from './journal-file.ts';
import type { Logger } from './log.ts';

export type JournalFault = 'full' | 'io' | 'corrupt';

const CODE_OF: Record<JournalFault, ErrorCode> = { full: 'MATCHD_JOURNAL_FULL', io: 'MATCHD_JOURNAL', corrupt: 'MATCHD_JOURNAL_CORRUPT' };

/** The fault an error means for the journal, or null when it is not one (a constraint, a bug, a busy lock...). */
export function classifyJournalError(err: unknown): JournalFault | null {
  const code = String((err as { code?: unknown })?.code ?? '');
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return 'full';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'corrupt';
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN') return 'io';
  return null;
}

/** Free bytes for unprivileged writers on the filesystem holding `dir` (null where statfs is unavailable). */
export function freeBytes(dir: string): { free: number; total: number } | null {
  try {
    const s = fs.statfsSync(dir);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  } catch {
    return null;
  }
}

export interface JournalHealthOptions {
  log: Logger;
  /** A small write; throws while the fault lasts. */
  probe: () => void;
  /** The journal file (its folder's free space is checked before resuming; corruption messages name it). */
  file: string;
  /** Called once the journal takes writes again (resume intake, scoring, actions). */
  onRecovered: () => void;
  probeEveryMs?: number;
}

export interface JournalHealthView {
  ok: boolean;
  fault?: JournalFault;
  code?: ErrorCode;
  detail?: string;
  since?: string;
}

export class JournalHealth {
  private fault: JournalFault | null = null;
  private detail = '';
  private since = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly probeEveryMs: number;

  constructor(private readonly opts: JournalHealthOptions) {
    this.probeEveryMs = opts.probeEveryMs ?? 1000;
  }

  /** False while the journal is paused by a fault. */
  get ok(): boolean {
    return this.fault === null;
  }

  /**
   * Run a journal call. On any error it is reported (a journal fault pauses; anything else is logged) and
   * `fallback` is returned instead, so timers and callbacks never throw.
   */
  run<T>(what: string, fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (err) {
      this.report(what, err);
      return fallback;
    }
  }

  /** Like `run`, but rethrows as a coded MatchdError (for callers that answer a request with it). */
  runOrThrow<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      const fault = this.report(what, err);
      if (err instanceof MatchdError) throw err;
      throw new MatchdError(fault ? CODE_OF[fault] : 'MATCHD_JOURNAL', `journal ${what} failed: ${(err as Error).message}`);
    }
  }

  /** Classify an error from a journal call; a fault pauses everything until the probe succeeds. */
  report(what: string, err: unknown): JournalFault | null {
    const fault = classifyJournalError(err);
    const message = (err as Error)?.message ?? String(err);
    if (!fault) {
      this.opts.log.error({ err, op: what }, 'journal call failed; carrying on');
      return null;
    }
    if (this.fault === null || (fault === 'corrupt' && this.fault !== 'corrupt')) {
      this.fault = fault;
      this.since = Date.now();
      this.detail = fault === 'full'
        ? `the journal's disk is full (${what}: ${message}); intake, scoring and actions are paused until space returns`
        : fault === 'corrupt'
          ? `the journal is corrupt (${what}: ${message}); ${recoveryHint(this.opts.file)}`
          : `the journal cannot be written (${what}: ${message}); paused, retrying every ${this.probeEveryMs} ms`;
      this.opts.log.error({ code: CODE_OF[fault], op: what, err: message }, this.detail);
      if (fault !== 'corrupt') this.schedule();
      else clearTimeout(this.timer);
    }
    return fault;
  }

  view(): JournalHealthView {
    if (!this.fault) return { ok: true };
    return { ok: false, fault: this.fault, code: CODE_OF[this.fault], detail: this.detail, since: new Date(this.since).toISOString() };
  }

  /** The refusal message for sources while paused. */
  get pausedMessage(): string {
    return this.fault === 'full' ? "the journal's disk is full; intake is paused until space returns" : 'the journal is unavailable; intake is paused';
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tryResume(), this.probeEveryMs);
    this.timer.unref();
  }

  /**
   * Resume once a probe write works (the probe also checkpoints the WAL, handing its space back) and the disk has
   * room to spare, so that one freed page does not flap the state.
   */
  private tryResume(): void {
    if (this.fault === null || this.fault === 'corrupt') return;
    try {
      this.opts.probe();
    } catch {
      return this.schedule();
    }
    const space = freeBytes(path.dirname(path.resolve(this.opts.file)));
    if (space && space.free < Math.min(1024 * 1024, space.total / 10)) return this.schedule();
    const pausedMs = Date.now() - this.since;
    this.fault = null;
    this.detail = '';
    this.opts.log.warn({ pausedMs }, 'the journal takes writes again; resuming');
    this.opts.onRecovered();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
