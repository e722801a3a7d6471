/**
 * What sits at the journal path, checked before and right after SQLite opens it. matchd never silently replaces a
 * journal: an existing file that is empty (0 bytes) or not a matchd journal is refused (MATCHD_JOURNAL_INVALID)
 * unless the user asked for a new one (`matchd journal init`), and a journal that fails `PRAGMA quick_check` is
 * refused with MATCHD_JOURNAL_CORRUPT and the commands that check and salvage it.
 */
import type Database from 'better-sqlite3';
import fs from 'node:fs';
import { MatchdError } from './errors.ts';

/** `PRAGMA application_id` of a matchd journal ("mtcd"), so another program's SQLite file is never mistaken for one. */
export const MATCHD_APPLICATION_ID = 0x6d746364;
/** The tables every matchd journal has (journals written before the application id was set are recognised by these). */
export const JOURNAL_TABLES = ['jobs', 'outbox', 'plugin_state'] as const;

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** The commands a user runs on a corrupt journal (printed in every corruption message). */
export function recoveryHint(file: string): string {
  return `stop matchd, then run \`matchd journal check --config FILE\` to see the damage and \`matchd journal recover --config FILE\` to salvage what can be read into a new journal (the damaged file is kept beside it) — journal ${file}`;
}

export type JournalFileKind = 'missing' | 'empty' | 'sqlite';

/**
 * Look at the journal path without creating or changing anything. Throws MATCHD_JOURNAL_INVALID for a path that is
 * not a regular file, a 0-byte file (unless `init`), or a file that is not SQLite at all.
 */
export function inspectJournalFile(file: string, opts: { init?: boolean } = {}): JournalFileKind {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new MatchdError('MATCHD_JOURNAL', `cannot read the journal ${file}: ${(err as Error).message} (journal.path)`, { file });
  }
  if (!st.isFile()) throw invalid(file, `is not a regular file (it is a ${describeKind(st)})`);
  if (st.size === 0) {
    if (opts.init) return 'empty';
    throw invalid(
      file,
      'is an empty file (0 bytes). Starting on it would silently drop every job, result and dedupe key it once held. ' +
        'Restore it from a backup, point journal.path elsewhere, or run `matchd journal init --config FILE` to start a new, empty journal there',
    );
  }
  const head = Buffer.alloc(SQLITE_HEADER.length);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (!head.equals(SQLITE_HEADER)) {
    throw invalid(file, 'is not a matchd journal (not an SQLite database at all); matchd will not overwrite it. Move it away or change journal.path');
  }
  return 'sqlite';
}

function describeKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'named pipe';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'special file';
}

function invalid(file: string, what: string): MatchdError {
  return new MatchdError('MATCHD_JOURNAL_INVALID', `the journal ${file} ${what} (journal.path)`, { file });
}

/** `PRAGMA quick_check`: the problems it lists (empty when the file is sound). */
export function quickCheck(db: Database.Database, max = 20): string[] {
  let rows: { quick_check: string }[];
  try {
    rows = db.pragma(`quick_check(${max})`) as { quick_check: string }[];
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? '');
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return [(err as Error).message]; // damage too bad to list
    throw err;
  }
  const problems = rows.map((r) => r.quick_check);
  return problems.length === 1 && problems[0] === 'ok' ? [] : problems;
}

/**
 * After opening an existing SQLite file: refuse it unless it is sound and a matchd journal. Journals from before the
 * application id get it stamped (they are recognised by their tables and a user_version of 1 or later).
 */
export function verifyJournal(db: Database.Database, file: string): void {
  const problems = quickCheck(db);
  if (problems.length) {
    throw new MatchdError('MATCHD_JOURNAL_CORRUPT', `the journal is corrupt (PRAGMA quick_check: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? '; …' : ''}); ${recoveryHint(file)}`, {
      file, problems,
    });
  }
  const appId = db.pragma('application_id', { simple: true }) as number;
  const tables = (db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
  const hasTables = JOURNAL_TABLES.every((t) => tables.includes(t));
  if (appId === MATCHD_APPLICATION_ID && hasTables) return;
  if (appId === 0 && hasTables && (db.pragma('user_version', { simple: true }) as number) >= 1) {
    db.pragma(`application_id = ${MATCHD_APPLICATION_ID}`);
    return;
  }
  throw invalid(
    file,
    `is an SQLite database but not a matchd journal (application_id ${appId}, tables: ${tables.join(', ') || 'none'}); matchd will not write into it. Move it away or change journal.path`,
  );
}

/** Map an SQLite error at open time onto the catalogue (a garbled header is corruption, not a generic failure). */
export function openError(err: unknown, file: string): MatchdError {
  if (err instanceof MatchdError) return err;
  const code = String((err as { code?: unknown }).code ?? '');
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new MatchdError('MATCHD_JOURNAL_CORRUPT', `the journal is corrupt (${(err as Error).message}); ${recoveryHint(file)}`, { file });
  }
  return new MatchdError('MATCHD_JOURNAL', `cannot open the journal ${file}: ${(err as Error).message} (journal.path)`, { file });
}
