/**
 * What `matchd calibrate` learns from: labelled examples (an image, the texts it is scored against, match or not),
 * read from a CSV or JSON Lines file (`image,text,label`; the web page's labels export is one), from the journal's
 * review decisions (`--from-journal`), or from a folder tree `DIR/<label>/...` with a texts file. Every problem is
 * reported with its line (or file) and the rest goes on; only a file that is not CSV / JSON Lines at all, or one
 * without the columns, stops the run (MATCHD_CALIBRATE_INPUT).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MatchdError } from '../core/errors.ts';
import type { Example, Problem } from '../core/calibrate/score.ts';
import { parseCsv } from '../core/items/csv.ts';
import { listImageFiles } from './files.ts';

export interface Inputs {
  examples: Example[];
  problems: Problem[];
}

const MATCH = new Set(['match', 'yes', 'true', '1', 'positive', 'pos']);
const NO_MATCH = new Set(['no-match', 'nomatch', 'no_match', 'no', 'false', '0', 'negative', 'neg', 'mismatch']);

/**
 * A label's meaning: match / no-match (and their spellings), or a band of the rule — its best band is a match, any
 * other band is not (a person who chose a lower band said "not good enough to adopt").
 */
export function labelMeaning(raw: string, bands: readonly string[]): boolean | undefined {
  const l = raw.trim().toLowerCase();
  if (MATCH.has(l)) return true;
  if (NO_MATCH.has(l)) return false;
  const i = bands.findIndex((b) => b.toLowerCase() === l);
  return i < 0 ? undefined : i === 0;
}

function unknownLabel(raw: string, bands: readonly string[]): string {
  return `unknown label ${JSON.stringify(raw.slice(0, 60))} (expected match, no-match, or a band: ${bands.join(', ')})`;
}

/** Strict UTF-8 text of an input file, or MATCHD_CALIBRATE_INPUT (binary, not UTF-8, unreadable). */
function readText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new MatchdError('MATCHD_CALIBRATE_INPUT', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (bytes.includes(0)) throw new MatchdError('MATCHD_CALIBRATE_INPUT', `${file} is not CSV or JSON Lines: it holds binary data`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new MatchdError('MATCHD_CALIBRATE_INPUT', `${file} is not CSV or JSON Lines: it is not UTF-8 text`);
  }
}

/** A labelled pairs file: CSV with a header naming image, text and label (other columns ignored), or JSON Lines. */
export function readPairsFile(file: string, bands: readonly string[]): Inputs {
  const text = readText(file);
  const base = path.dirname(path.resolve(file));
  const name = path.basename(file);
  const ext = path.extname(file).toLowerCase();
  const first = text.trimStart()[0];
  const jsonl = ext === '.jsonl' || ext === '.ndjson' || (ext !== '.csv' && first === '{');
  const out: Inputs = { examples: [], problems: [] };
  const add = (where: string, image: unknown, texts: unknown[], label: unknown) => {
    if (typeof image !== 'string' || image.trim() === '') return out.problems.push({ where, message: 'no image' });
    const list = texts.filter((t): t is string => typeof t === 'string' && t.trim() !== '');
    if (!list.length) return out.problems.push({ where, message: 'no text' });
    if (typeof label !== 'string' && typeof label !== 'number' && typeof label !== 'boolean') return out.problems.push({ where, message: 'no label' });
    const m = labelMeaning(String(label), bands);
    if (m === undefined) return out.problems.push({ where, message: unknownLabel(String(label), bands) });
    out.examples.push({ image: path.resolve(base, image), texts: list, match: m, label: String(label), where });
  };
  if (jsonl) {
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `${name} line ${i + 1}`;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch (err) {
        out.problems.push({ where, message: `not JSON (${(err as Error).message})` });
        return;
      }
      if (!o || typeof o !== 'object' || Array.isArray(o)) return out.problems.push({ where, message: 'not a JSON object' });
      const r = o as Record<string, unknown>;
      add(where, r.image, Array.isArray(r.texts) ? r.texts : [r.text], r.label);
    });
    if (!out.examples.length && out.problems.length && out.problems.every((p) => p.message.startsWith('not JSON'))) {
      throw new MatchdError('MATCHD_CALIBRATE_INPUT', `${file} is not JSON Lines: no line is a JSON object (${out.problems[0]!.where}: ${out.problems[0]!.message})`);
    }
    return out;
  }
  let records;
  try {
    records = parseCsv(text);
  } catch (err) {
    throw new MatchdError('MATCHD_CALIBRATE_INPUT', `${file} is not CSV: ${(err as Error).message}`);
  }
  const header = records[0]?.fields.map((f) => f.trim().toLowerCase()) ?? [];
  const col = (n: string) => header.indexOf(n);
  const missing = ['image', 'text', 'label'].filter((c) => col(c) < 0);
  if (missing.length) {
    throw new MatchdError('MATCHD_CALIBRATE_INPUT', `${file} is not a labelled pairs file: its first line must name the columns image, text and label (missing: ${missing.join(', ')}; JSON Lines files end in .jsonl)`);
  }
  for (const r of records.slice(1)) add(`${name} line ${r.line}`, r.fields[col('image')], [r.fields[col('text')]], r.fields[col('label')]);
  return out;
}

/** `DIR/<label>/**` images, each scored against every text of the texts file; the label is the first folder's name. */
export function readLabelledDir(dir: string, texts: string[], bands: readonly string[]): Inputs {
  const out: Inputs = { examples: [], problems: [] };
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new MatchdError('MATCHD_CALIBRATE_INPUT', `${dir}: cannot read the folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  for (const e of entries) {
    const where = path.join(dir, e.name);
    if (!e.isDirectory()) {
      if (!e.name.startsWith('.')) out.problems.push({ where, message: 'not in a label folder (expected DIR/<label>/...)' });
      continue;
    }
    const m = labelMeaning(e.name, bands);
    if (m === undefined) {
      out.problems.push({ where, message: `${unknownLabel(e.name, bands)}; the folder is left out` });
      continue;
    }
    const listing = listImageFiles(where, true);
    for (const s of listing.skipped) out.problems.push({ where: s.file, message: `skipped: ${s.why}` });
    for (const image of listing.images) out.examples.push({ image, texts, match: m, label: e.name, where: path.relative(process.cwd(), image) || image });
  }
  return out;
}

/**
 * The review decisions journalled by the web page (read-only: the daemon may be running), for one rule or all: each
 * decided image against the texts it was scored with, the chosen band as the label.
 */
export function readJournalLabels(file: string, rule: string | undefined, bandsOf: (rule: string) => readonly string[] | undefined): Inputs {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new MatchdError('MATCHD_CALIBRATE_INPUT', `cannot open the journal ${file} (journal.path): ${(err as Error).message}`);
  }
  try {
    const hasLabels = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'labels'`).get() !== undefined;
    if (!hasLabels) throw new MatchdError('MATCHD_CALIBRATE_INPUT', `the journal ${file} has no review decisions yet (it was written by a matchd without the review page; run this one and decide some jobs on /review)`);
    const rows = db.prepare(`SELECT job_id, rule, band, image, texts FROM labels WHERE (? IS NULL OR rule = ?) ORDER BY at, job_id`).all(rule ?? null, rule ?? null) as
      { job_id: number; rule: string; band: string; image: string; texts: string }[];
    const out: Inputs = { examples: [], problems: [] };
    for (const r of rows) {
      const where = `job ${r.job_id}`;
      const bands = bandsOf(r.rule);
      if (!bands) {
        out.problems.push({ where, message: `rule '${r.rule}' is not in the config; its decision is left out` });
        continue;
      }
      const m = labelMeaning(r.band, bands);
      if (m === undefined) {
        out.problems.push({ where, message: unknownLabel(r.band, bands) });
        continue;
      }
      out.examples.push({ image: r.image, texts: JSON.parse(r.texts) as string[], match: m, label: r.band, where });
    }
    if (!rows.length) throw new MatchdError('MATCHD_CALIBRATE_INPUT', `the journal ${file} holds no review decisions${rule ? ` for rule '${rule}'` : ''} yet (decide some on the web page's /review)`);
    return out;
  } finally {
    db.close();
  }
}
