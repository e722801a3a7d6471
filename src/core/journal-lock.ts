/**
 * One daemon per SQLite journal. Two daemons on one file would lease the same jobs and run the same actions, so the
 * daemon takes an exclusive lock before it opens the journal: SQLite's own file lock on `<journal>-lock` (a tiny
 * database held with `locking_mode = EXCLUSIVE`). The kernel releases it when the process ends, however it ends —
 * a daemon killed with -9 never leaves a stale lock behind, and nothing has to guess from a pid file. Who holds it is
 * written beside it (`<journal>-lock.json`) so that the refusal names the other process. The CLI tools (`replay`,
 * `endpoint`, `journal check`) do not take it: they work beside a running daemon, as they always have.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MatchdError } from './errors.ts';

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

export class JournalLock {
  private constructor(private db: Database.Database | undefined, readonly file: string) {}

  /** Take the lock on `journal` or throw MATCHD_JOURNAL_LOCKED naming the process that holds it. */
  static acquire(journal: string): JournalLock {
    const file = `${journal}-lock`;
    let db: Database.Database | undefined;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      db = new Database(file, { timeout: 0 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE'); // held until close: exclusive locking mode never gives a lock back
      db.exec('CREATE TABLE IF NOT EXISTS held (at INTEGER)');
      db.exec('COMMIT');
    } catch (err) {
      db?.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw locked(journal, readHolder(file));
      throw new MatchdError('MATCHD_JOURNAL', `cannot lock the journal ${journal} (${file}): ${(err as Error).message} (journal.path)`, { file: journal });
    }
    const holder: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
    try {
      fs.writeFileSync(`${file}.json`, `${JSON.stringify(holder)}\n`);
    } catch {
      /* only the refusal message of a second daemon would miss it */
    }
    return new JournalLock(db, file);
  }

  release(): void {
    if (!this.db) return;
    fs.rmSync(`${this.file}.json`, { force: true });
    this.db.close();
    this.db = undefined;
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    return JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

function locked(journal: string, h: LockHolder | undefined): MatchdError {
  const who = h ? `matchd pid ${h.pid} on ${h.host}, started ${h.startedAt} (${h.command})` : 'another matchd process';
  return new MatchdError(
    'MATCHD_JOURNAL_LOCKED',
    `the journal ${journal} is in use by ${who}; one daemon per SQLite journal — stop that one, or point journal.path elsewhere (several daemons share work through a PostgreSQL journal: journal.url)`,
    { file: journal, ...(h ? { pid: h.pid, host: h.host } : {}) },
  );
}
