/**
 * Folder manifests: texts (and meta) for many images in one file next to them, by file name.
 *   CSV with a header: a `file` column; `text` and/or numbered text columns (`text1`, `text_2`...), a row per text or
 *   several per row, repeated rows for the same file adding texts; an optional `meta` column (a JSON object); any
 *   other column becomes a string field of the meta (`sku` → meta.sku).
 *   JSON Lines: `{ "file": "photo.jpg", "texts": [...] | "text": "...", "meta": {...} }`, repeated lines adding texts.
 * A bad row is reported (with its line) and skipped; the others count. File names are relative to the manifest's
 * folder, `/`-separated. Texts and meta are checked against the limits by the caller (the core's item check).
 */
import path from 'node:path';
import { MatchdError } from '../errors.ts';
import { decodeUtf8 } from './companion.ts';
import { parseCsv } from './csv.ts';

export interface ManifestEntry {
  texts: string[];
  meta?: Record<string, unknown>;
  /** The lines that named this file. */
  lines: number[];
}

export interface Manifest {
  entries: Map<string, ManifestEntry>;
  /** Rows that were skipped, each naming its line. */
  problems: string[];
}

const TEXT_COLUMN = /^text(?:[ _-]?\d+)?$/i;

/** The manifest kind by extension: `.csv`, or `.jsonl` / `.ndjson`. */
export function manifestKind(file: string): 'csv' | 'jsonl' | undefined {
  const ext = path.extname(file).toLowerCase();
  return ext === '.csv' ? 'csv' : ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : undefined;
}

/** A manifest's entries; throws MATCHD_COMPANION_INVALID only when the whole file is unusable (not UTF-8, no header). */
export function parseManifest(bytes: Uint8Array, name: string): Manifest {
  const text = decodeUtf8(bytes, name, 'MATCHD_COMPANION_INVALID');
  const kind = manifestKind(name);
  if (!kind) throw new MatchdError('MATCHD_COMPANION_INVALID', `${name}: a manifest is .csv or .jsonl`);
  const m: Manifest = { entries: new Map(), problems: [] };
  if (kind === 'csv') readCsv(text, name, m);
  else readJsonl(text, name, m);
  return m;
}

function add(m: Manifest, file: string, line: number, texts: string[], meta: Record<string, unknown> | undefined): void {
  const key = file.split(path.sep).join('/').replace(/^\.\//, '');
  const e = m.entries.get(key) ?? { texts: [], lines: [] };
  e.texts.push(...texts);
  if (meta) e.meta = { ...e.meta, ...meta };
  e.lines.push(line);
  m.entries.set(key, e);
}

function badFile(file: unknown): string | undefined {
  if (typeof file !== 'string' || file.trim() === '') return 'no file name';
  if (path.isAbsolute(file) || file.split(/[\\/]/).includes('..')) return `file '${file.slice(0, 80)}' must be a name relative to the manifest's folder`;
  return undefined;
}

function readCsv(text: string, name: string, m: Manifest): void {
  let records;
  try {
    records = parseCsv(text);
  } catch (err) {
    throw new MatchdError('MATCHD_COMPANION_INVALID', `${name}: ${(err as Error).message}`);
  }
  const header = records.shift();
  const cols = header?.fields.map((h) => h.trim()) ?? [];
  const fileCol = cols.findIndex((c) => c.toLowerCase() === 'file');
  if (fileCol < 0) throw new MatchdError('MATCHD_COMPANION_INVALID', `${name}: the first line must be a header with a 'file' column (and 'text' columns), e.g. file,text`);
  const textCols = cols.flatMap((c, i) => (TEXT_COLUMN.test(c) ? [i] : []));
  const metaCol = cols.findIndex((c) => c.toLowerCase() === 'meta');
  const extraCols = cols.flatMap((c, i) => (i !== fileCol && i !== metaCol && !textCols.includes(i) && c !== '' ? [i] : []));
  if (textCols.length === 0) m.problems.push(`${name}: no text column (text, text1, text2...); rows give meta only`);
  for (const r of records) {
    const at = `${name} line ${r.line}`;
    if (r.fields.length > cols.length) {
      m.problems.push(`${at}: ${r.fields.length} fields, the header has ${cols.length}`);
      continue;
    }
    const file = (r.fields[fileCol] ?? '').trim();
    const why = badFile(file);
    if (why) {
      m.problems.push(`${at}: ${why}`);
      continue;
    }
    let meta: Record<string, unknown> | undefined;
    const rawMeta = metaCol >= 0 ? (r.fields[metaCol] ?? '').trim() : '';
    if (rawMeta) {
      try {
        meta = JSON.parse(rawMeta) as Record<string, unknown>;
      } catch {
        m.problems.push(`${at}: the meta column is not JSON`);
        continue;
      }
      if (!meta || typeof meta !== 'object' || Array.isArray(meta)) {
        m.problems.push(`${at}: the meta column must hold a JSON object`);
        continue;
      }
    }
    for (const i of extraCols) {
      const v = r.fields[i];
      if (v !== undefined && v !== '') meta = { ...meta, [cols[i]!]: v };
    }
    // Empty text cells are skipped, so rows may carry different numbers of texts.
    const texts = textCols.map((i) => r.fields[i] ?? '').filter((t) => t.trim() !== '');
    add(m, file, r.line, texts, meta);
  }
}

function readJsonl(text: string, name: string, m: Manifest): void {
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const at = `${name} line ${line}`;
    if (raw.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(raw);
    } catch {
      m.problems.push(`${at}: not valid JSON`);
      return;
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) {
      m.problems.push(`${at}: expected an object like {"file": "photo.jpg", "texts": [...]}`);
      return;
    }
    const r = o as Record<string, unknown>;
    const unknown = Object.keys(r).filter((k) => !['file', 'texts', 'text', 'meta'].includes(k));
    const why = badFile(r.file)
      ?? (unknown.length ? `unknown key(s) ${unknown.map((k) => k.slice(0, 40)).join(', ')} (known: file, texts, text, meta)` : undefined)
      ?? (r.texts !== undefined && r.text !== undefined ? 'give texts or text, not both' : undefined)
      ?? (r.text !== undefined && typeof r.text !== 'string' ? 'text must be a string' : undefined)
      ?? (r.texts !== undefined && !Array.isArray(r.texts) ? 'texts must be a list of strings' : undefined)
      ?? (r.meta !== undefined && (!r.meta || typeof r.meta !== 'object' || Array.isArray(r.meta)) ? 'meta must be an object' : undefined);
    if (why) {
      m.problems.push(`${at}: ${why}`);
      return;
    }
    const texts = r.texts !== undefined ? (r.texts as string[]) : r.text !== undefined ? [r.text as string] : [];
    add(m, (r.file as string).trim(), line, texts, r.meta as Record<string, unknown> | undefined);
  });
}

/** An entry as an item: its texts (none: the rule's apply) and meta. */
export function entryItem(e: ManifestEntry): { texts?: string[]; meta?: Record<string, unknown> } {
  return { ...(e.texts.length ? { texts: e.texts } : {}), ...(e.meta ? { meta: e.meta } : {}) };
}
