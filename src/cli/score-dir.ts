/**
 * `matchd score --dir DIR`: every image in a folder against its own texts — its companions (`photo.txt`,
 * `photo.json`), else its manifest entry (`--manifest FILE`, or a `matchd-manifest.csv` / `.jsonl` in DIR), else the
 * `--texts` fallback. JSON Lines on stdout, one per image, with the texts used and the meta; a bad item is its own
 * line with an error code, never the end of the run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MatchdError, isMatchdError } from '../core/errors.ts';
import { DEFAULT_ITEM_LIMITS, checkItem } from '../core/item.ts';
import { companionPaths, presentCompanions, readCompanions } from '../core/items/companion.ts';
import { parseManifest, type Manifest } from '../core/items/manifest.ts';
import type { Matcher } from '../core/matcher.ts';
import type { Listing } from './files.ts';

/** Looked for in DIR when no --manifest is given (the folder source's defaults). */
export const DEFAULT_MANIFESTS = ['matchd-manifest.csv', 'matchd-manifest.jsonl'];

/**
 * What the listing skipped that is worth reporting: companion files of listed images and the folder's manifests are
 * inputs, not skipped files.
 */
export function skippedOtherThanCompanions(listing: Listing, dir: string): Listing['skipped'] {
  const companions = new Set(listing.images.flatMap((f) => Object.values(companionPaths(f))));
  const manifests = new Set(DEFAULT_MANIFESTS.map((n) => path.join(dir, n)));
  return listing.skipped.filter((s) => !companions.has(s.file) && !manifests.has(s.file));
}

export interface DirOptions {
  dir: string;
  /** The images to score (listed by the caller: `listImageFiles`). */
  files: string[];
  /** Texts for images without their own. */
  fallback?: string[];
  /** A manifest file; names in it are relative to `dir`. */
  manifest?: string;
  /** Images per round through the pipeline. */
  chunk?: number;
  write(line: string): void;
  warn(message: string): void;
  progress(done: number, total: number, failed: number): void;
}

type Planned =
  | { file: string; ok: true; texts: string[]; textsFrom: 'companion' | 'manifest' | 'fallback'; meta?: Record<string, unknown> }
  | { file: string; ok: false; error: MatchdError; meta?: Record<string, unknown> };

/** Read the manifest and report its problems (bad rows, files it names that are not there); never fatal. */
function loadManifest(file: string, dir: string, warn: (m: string) => void): Manifest | undefined {
  let m: Manifest;
  try {
    m = parseManifest(fs.readFileSync(file), path.basename(file));
  } catch (err) {
    if (!isMatchdError(err)) throw new MatchdError('MATCHD_COMPANION_INVALID', `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    throw err;
  }
  for (const p of m.problems) warn(`MATCHD_COMPANION_INVALID: ${p}`);
  for (const [name, e] of m.entries) {
    if (!fs.existsSync(path.join(dir, name))) warn(`MATCHD_COMPANION_INVALID: ${path.basename(file)} line ${e.lines.join(', ')}: ${name} is not in ${dir}`);
  }
  return m;
}

async function plan(file: string, o: DirOptions, manifest: Manifest | undefined): Promise<Planned> {
  let own;
  try {
    own = await readCompanions(await presentCompanions(file));
  } catch (err) {
    return { file, ok: false, error: isMatchdError(err) ? err : new MatchdError('MATCHD_COMPANION_INVALID', String(err)) };
  }
  const entry = manifest?.entries.get(path.relative(o.dir, file).split(path.sep).join('/'));
  const meta = own.meta ?? entry?.meta;
  const m = meta !== undefined ? { meta } : {};
  const fromManifest = entry?.texts.length ? entry.texts : undefined;
  const [texts, textsFrom] = own.texts ? [own.texts, 'companion' as const] : fromManifest ? [fromManifest, 'manifest' as const] : [o.fallback, 'fallback' as const];
  const problem = checkItem({ ...(textsFrom !== 'fallback' ? { texts } : {}), meta }, DEFAULT_ITEM_LIMITS);
  if (problem) return { file, ok: false, error: new MatchdError(problem.code, `${path.basename(file)}: ${problem.message}`, { problems: problem.problems }), ...m };
  if (!texts) {
    return { file, ok: false, error: new MatchdError('MATCHD_TEXTS_REQUIRED', `${path.basename(file)} has no texts: give --texts FILE, a companion ${path.parse(file).name}.txt, or a manifest entry`), ...m };
  }
  return { file, ok: true, texts, textsFrom, ...m };
}

/** Score the folder; returns the failures by code. */
export async function scoreDir(matcher: Matcher, o: DirOptions): Promise<{ total: number; failures: Map<string, number> }> {
  const files = o.files;
  const manifestFile = o.manifest ?? DEFAULT_MANIFESTS.map((n) => path.join(o.dir, n)).find((f) => fs.existsSync(f));
  const manifest = manifestFile ? loadManifest(manifestFile, o.dir, o.warn) : undefined;
  const failures = new Map<string, number>();
  const fail = (p: Planned & { ok: false }) => {
    failures.set(p.error.code, (failures.get(p.error.code) ?? 0) + 1);
    o.write(JSON.stringify({ file: p.file, ok: false, error: { code: p.error.code, message: p.error.message }, ...(p.meta !== undefined ? { meta: p.meta } : {}) }));
  };
  const chunk = o.chunk ?? 64;
  let done = 0;
  for (let s = 0; s < files.length; s += chunk) {
    const planned = await Promise.all(files.slice(s, s + chunk).map((f) => plan(f, o, manifest)));
    const ready = planned.filter((p): p is Planned & { ok: true } => p.ok);
    // Images and every image's texts go through the pipeline together: one engine batch serves many images.
    const scored = await matcher.scoreMany(ready.map((p) => ({ image: p.file, texts: p.texts })));
    let k = 0;
    for (const p of planned) {
      if (!p.ok) {
        fail(p);
        continue;
      }
      const r = scored[k++]!;
      if (!r.ok) fail({ file: p.file, ok: false, error: r.error, ...(p.meta !== undefined ? { meta: p.meta } : {}) });
      else o.write(JSON.stringify({ file: p.file, ok: true, texts: p.texts, textsFrom: p.textsFrom, ...(p.meta !== undefined ? { meta: p.meta } : {}), results: r.results }));
    }
    done += planned.length;
    o.progress(done, files.length, [...failures.values()].reduce((a, b) => a + b, 0));
  }
  return { total: files.length, failures };
}
