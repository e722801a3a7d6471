/**
 * Checking and salvaging a damaged journal (`matchd journal check` / `matchd journal recover`). Salvage reads every
 * table in rowid order; where a page cannot be read it seeks past the damage (doubling, then narrowing the step) so
 * that rows on sound pages after it are still found. The rows read go into a fresh journal that takes the original
 * name; the damaged file is kept beside it (`<journal>.corrupt-<time>`), never deleted.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { MatchdError } from './errors.ts';
import { JOURNAL_TABLES, inspectJournalFile, openError } from './journal-file.ts';
import { Journal } from './journal.ts';

export interface CheckReport {
  file: string;
  ok: boolean;
  /** What `PRAGMA integrity_check` listed (empty when sound). */
  problems: string[];
  /** Rows readable per table, or the error reading it stopped at. */
  tables: Record<string, { rows: number } | { error: string }>;
}

export interface TableSalvage {
  read: number;
  /** Rowid ranges that could not be read (inclusive). */
  gaps: [number, number][];
  /** Rows read but not kept (an action whose job was lost). */
  dropped: number;
}

export interface RecoverReport {
  file: string;
  /** Where the damaged original now is. */
  keptAs: string;
  tables: Record<string, TableSalvage>;
}

function openReadOnly(file: string): Database.Database {
  if (inspectJournalFile(file) === 'missing') throw new MatchdError('MATCHD_JOURNAL', `no journal at ${file} (journal.path)`, { file });
  try {
    return new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw openError(err, file);
  }
}

/** A full integrity check plus a row count per table; reads only. */
export function checkJournal(file: string): CheckReport {
  const db = openReadOnly(file);
  try {
    let problems: string[];
    try {
      problems = (db.pragma('integrity_check(100)') as { integrity_check: string }[]).map((r) => r.integrity_check);
      if (problems.length === 1 && problems[0] === 'ok') problems = [];
    } catch (err) {
      problems = [(err as Error).message];
    }
    const tables: CheckReport['tables'] = {};
    for (const t of JOURNAL_TABLES) {
      try {
        tables[t] = { rows: (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n };
      } catch (err) {
        tables[t] = { error: (err as Error).message };
      }
    }
    const ok = problems.length === 0 && Object.values(tables).every((v) => 'rows' in v);
    return { file, ok, problems, tables };
  } finally {
    db.close();
  }
}

type Row = Record<string, unknown> & { _rid: number };

/**
 * Every readable row of `table`, in rowid order, skipping unreadable stretches. Scans and seeks use `rowid >= x`:
 * a seek for x descends to the leaf that holds x, so from the first key of a sound leaf it never touches the
 * damaged one before it.
 */
export function salvageTable(db: Database.Database, table: string): { rows: Row[]; gaps: [number, number][] } {
  const scan = db.prepare(`SELECT rowid AS _rid, * FROM ${table} WHERE rowid >= ? ORDER BY rowid`);
  const seek = db.prepare(`SELECT rowid AS _rid FROM ${table} WHERE rowid >= ? ORDER BY rowid LIMIT 1`);
  /** The first row at or after `from`: its rowid, null when there is none, or 'unreadable'. */
  const firstFrom = (from: number): number | null | 'unreadable' => {
    try {
      const r = seek.get(from) as { _rid: number } | undefined;
      return r ? r._rid : null;
    } catch {
      return 'unreadable';
    }
  };
  const rows: Row[] = [];
  const gaps: [number, number][] = [];
  let start = Number.MIN_SAFE_INTEGER;
  for (;;) {
    let last: number | null = null;
    try {
      for (const r of scan.iterate(start) as IterableIterator<Row>) {
        rows.push(r);
        last = r._rid;
      }
      return { rows, gaps };
    } catch {
      // Damage after `base` (the last row read, or a start that itself failed): probe forward, doubling the step,
      // for a start from which a seek works, then narrow it down to the lowest such start.
      const base = last ?? (start === Number.MIN_SAFE_INTEGER ? 0 : start);
      let step = 1;
      let found: number | null | 'unreadable' = 'unreadable';
      while (base + step < Number.MAX_SAFE_INTEGER) {
        found = firstFrom(base + step);
        if (found !== 'unreadable') break;
        step *= 2;
      }
      if (found === null || found === 'unreadable') return { rows, gaps: [...gaps, [base + 1, Number.MAX_SAFE_INTEGER]] };
      let lo = base + Math.floor(step / 2); // unreadable (or base itself)
      let hi = base + step; // readable, first row `found`
      while (hi - lo > 1) {
        const mid = lo + Math.floor((hi - lo) / 2);
        const r = firstFrom(mid);
        if (r === 'unreadable') lo = mid;
        else {
          hi = mid;
          if (r !== null) found = r;
        }
      }
      if (found > base + 1) gaps.push([base + 1, found - 1]);
      start = found;
    }
  }
}

/**
 * Salvage what can be read from a damaged journal into a new one at the same path; the damaged file (with its WAL)
 * is renamed to `<file>.corrupt-<time>`. Actions whose job row was lost are dropped (they could not run anyway).
 */
export function recoverJournal(file: string, now = Date.now): RecoverReport {
  const src = openReadOnly(file);
  const stamp = new Date(now()).toISOString().replace(/[:.]/g, '-');
  const fresh = `${file}.recovering-${stamp}`;
  const keptAs = `${file}.corrupt-${stamp}`;
  const tables: Record<string, TableSalvage> = {};
  let db: Database.Database | undefined;
  try {
    new Journal(fresh, now).close(); // the schema and application id of a new journal
    const out = new Database(fresh);
    db = out;
    const jobs = salvageTable(src, 'jobs');
    const outbox = salvageTable(src, 'outbox');
    const state = salvageTable(src, 'plugin_state');
    const jobIds = new Set(jobs.rows.map((r) => r.id as number));
    const insert = (table: string, rows: Row[]): number => {
      if (!rows.length) return 0;
      const cols = Object.keys(rows[0]!).filter((c) => c !== '_rid');
      const stmt = out.prepare(`INSERT OR IGNORE INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
      let n = 0;
      out.transaction(() => {
        for (const r of rows) n += stmt.run(cols.map((c) => r[c])).changes;
      })();
      return n;
    };
    const keptJobs = insert('jobs', jobs.rows);
    const orphan = outbox.rows.filter((r) => !jobIds.has(r.job_id as number));
    const keptActions = insert('outbox', outbox.rows.filter((r) => jobIds.has(r.job_id as number)));
    const keptState = insert('plugin_state', state.rows);
    // Review decisions (version 3 on): kept whether or not their job survived (they outlive jobs anyway).
    const hasLabels = src.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'labels'`).get() !== undefined;
    const labels = hasLabels ? salvageTable(src, 'labels') : { rows: [], gaps: [] };
    const keptLabels = insert('labels', labels.rows);
    tables.jobs = { read: jobs.rows.length, gaps: jobs.gaps, dropped: jobs.rows.length - keptJobs };
    tables.outbox = { read: outbox.rows.length, gaps: outbox.gaps, dropped: orphan.length + (outbox.rows.length - orphan.length - keptActions) };
    tables.plugin_state = { read: state.rows.length, gaps: state.gaps, dropped: state.rows.length - keptState };
    if (hasLabels) tables.labels = { read: labels.rows.length, gaps: labels.gaps, dropped: labels.rows.length - keptLabels };
  } catch (err) {
    db?.close();
    for (const f of [fresh, `${fresh}-wal`, `${fresh}-shm`]) fs.rmSync(f, { force: true });
    throw err;
  } finally {
    src.close();
  }
  db!.close();
  // The damaged file and its WAL keep together under the new name; the salvaged journal takes the original name.
  // (-shm is only an index SQLite rebuilds; an empty -wal holds nothing.)
  fs.renameSync(file, keptAs);
  if ((fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0) > 0) fs.renameSync(`${file}-wal`, `${keptAs}-wal`);
  for (const suffix of ['-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  fs.renameSync(fresh, file);
  const dir = fs.openSync(path.dirname(path.resolve(file)), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
  return { file, keptAs, tables };
}
