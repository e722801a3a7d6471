/**
 * `matchd score IMAGE TEXT...`   one image, a table (or --json)
 * `matchd score --dir DIR`       a folder, each image against its own texts (score-dir.ts), JSON Lines on stdout,
 *                                progress on a TTY, bad items counted
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeUtf8, textLines } from '../core/items/companion.ts';
import { MatchdError } from '../core/errors.ts';
import { Matcher, type TextScore } from '../core/matcher.ts';
import { UsageError, defaultModelDir, positiveInt } from './args.ts';
import { scoreDir, skippedOtherThanCompanions } from './score-dir.ts';
import { IMAGE_EXT, assertRegularFile, listImageFiles, skippedSummary } from './files.ts';

export const scoreUsage = `matchd score IMAGE TEXT... [--texts FILE] [--json] [--model DIR]
matchd score --dir DIR [--texts FILE] [--manifest FILE] [--recursive] [--model DIR]
  --model DIR        model package (default: the built-in demo, models/demo)
  --json             print JSON instead of a table (single image)
  --dir DIR          score every image file in DIR; JSON Lines on stdout, one object per file, each against its own
                     texts: photo.json / photo.txt next to photo.jpg, else its --manifest entry, else --texts
  --texts FILE       texts, one per line (UTF-8; blank lines and lines starting with # are skipped): with IMAGE, added
                     to the TEXTs; with --dir, the fallback for images without texts of their own
  --manifest FILE    CSV (header file,text; repeated rows or text1,text2... columns) or JSON Lines
                     ({"file","texts","meta"}); file names relative to --dir (default: DIR/matchd-manifest.csv or .jsonl)
  --recursive        include sub-folders of --dir
  --verbose          with --dir, list every file skipped (other extensions, hidden, symlinks, non-regular files)
  --provider P       cpu (default) or cuda
  --threads N        ONNX Runtime intra-op threads
  --batch N          images per engine run (default 16)`;

/** Read a texts file strictly: invalid UTF-8 is an error naming the line, never silently replaced. */
export function readTextsFile(file: string): string[] {
  const texts = textLines(decodeUtf8(readArgFile('--texts', file), file, 'MATCHD_TEXT_INVALID'));
  if (texts.length === 0) throw new MatchdError('MATCHD_TEXT_INVALID', `${file}: no texts (one per line)`, { file });
  return texts;
}

function pathProblem(option: string, file: string, err: unknown): MatchdError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a file' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
  return new MatchdError('MATCHD_PATH_INVALID', `${option} ${file}: ${why}`, { option, path: file });
}

/** Read a file named by an option; a missing or unreadable one is MATCHD_PATH_INVALID naming the option. */
function readArgFile(option: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw pathProblem(option, file, err);
  }
}

/** The same check, before the model loads, for a file read later. */
function assertReadableFile(option: string, file: string): void {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    if (fs.statSync(file).isDirectory()) throw Object.assign(new Error(), { code: 'EISDIR' });
  } catch (err) {
    throw pathProblem(option, file, err);
  }
}

function assertFolder(option: string, dir: string): void {
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) throw new MatchdError('MATCHD_PATH_INVALID', `${option} ${dir}: no such folder (${path.resolve(dir)})`, { option, path: dir });
  if (!st.isDirectory()) throw new MatchdError('MATCHD_PATH_INVALID', `${option} ${dir}: not a folder; to score one image: matchd score IMAGE TEXT...`, { option, path: dir });
}

/**
 * `matchd score a.jpg b.jpg red` would score the path "b.jpg" as a text: a TEXT that names an existing image file is
 * almost certainly a second image, so it is refused with the way to score several.
 */
function refuseImagesAsTexts(texts: string[]): void {
  const files = texts.filter((t) => IMAGE_EXT.test(t) && fs.statSync(t, { throwIfNoEntry: false })?.isFile());
  if (files.length) {
    throw new UsageError(
      `${files.map((f) => JSON.stringify(f)).join(', ')} ${files.length === 1 ? 'is an image file' : 'are image files'}, not ${files.length === 1 ? 'a text' : 'texts'}: ` +
        'score takes one IMAGE and then texts; for several images put them in a folder and use --dir DIR --texts FILE',
    );
  }
}

function fmt(n: number): string {
  return n.toFixed(3).padStart(7);
}

/** The human table, best match first. */
export function formatTable(image: string, model: string, results: TextScore[]): string {
  const sorted = [...results].sort((a, b) => b.cosine - a.cosine);
  const width = Math.max(4, ...sorted.map((r) => r.text.length));
  const lines = [`image: ${image}   model: ${model}`, `${'text'.padEnd(width)}   cosine    score  band`];
  for (const r of sorted) lines.push(`${r.text.padEnd(width)}  ${fmt(r.cosine)}  ${fmt(r.score)}  ${r.band}${r.truncated ? '  (truncated)' : ''}`);
  return lines.join('\n');
}

function progress(done: number, total: number, failed: number): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${failed ? ` (${failed} failed)` : ''}`);
  if (done === total) process.stderr.write('\n');
}

export async function scoreCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      json: { type: 'boolean', default: false },
      dir: { type: 'string' },
      texts: { type: 'string' },
      manifest: { type: 'string' },
      recursive: { type: 'boolean', default: false },
      provider: { type: 'string' },
      threads: { type: 'string' },
      batch: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const provider = values.provider ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda') throw new UsageError(`Expected cpu or cuda for --provider but received ${JSON.stringify(provider)}`);
  const options = {
    engine: { provider: provider as 'cpu' | 'cuda', intraOpThreads: positiveInt('threads', values.threads) },
    maxBatch: positiveInt('batch', values.batch),
  };
  const modelDir = path.resolve(values.model ?? defaultModelDir);

  if (values.dir !== undefined) {
    if (positionals.length) throw new UsageError('give either IMAGE TEXT... or --dir, not both');
    assertFolder('--dir', values.dir);
    if (values.manifest !== undefined) assertReadableFile('--manifest', values.manifest);
    const fallback = values.texts ? readTextsFile(values.texts) : undefined;
    const listing = listImageFiles(values.dir, values.recursive);
    const skipped = skippedOtherThanCompanions(listing, values.dir);
    process.stderr.write(skippedSummary(skipped, values.verbose));
    if (!listing.images.length) {
      throw new MatchdError('MATCHD_NOTHING_TO_DO', `no image files in ${path.resolve(values.dir)}${values.recursive ? ' or below' : ' (--recursive looks in sub-folders)'}${skipped.length ? `; ${skipped.length} other file(s) skipped, as listed above` : ''}; image extensions: .jpg .jpeg .png .webp .gif .tif .tiff .avif .heic .heif .bmp`);
    }
    const matcher = await Matcher.open(modelDir, options);
    try {
      const { total, failures } = await scoreDir(matcher, {
        dir: values.dir,
        files: listing.images,
        ...(fallback ? { fallback } : {}),
        ...(values.manifest ? { manifest: values.manifest } : {}),
        write: (line) => process.stdout.write(line + '\n'),
        warn: (m) => process.stderr.write(`matchd: ${m}\n`),
        progress,
      });
      const failed = [...failures.values()].reduce((a, b) => a + b, 0);
      const byCode = [...failures].sort(([a], [b]) => a.localeCompare(b)).map(([c, n]) => `${c}: ${n}`).join(', ');
      process.stderr.write(`matchd: scored ${total - failed} of ${total} image(s)${failed ? `; ${failed} failed (${byCode})` : ''}\n`);
      return 0;
    } finally {
      matcher.close();
    }
  }
  if (values.manifest !== undefined) throw new UsageError('--manifest goes with --dir');

  const [image, ...given] = positionals;
  refuseImagesAsTexts(given);
  const texts = [...given, ...(values.texts ? readTextsFile(values.texts) : [])];
  if (!image || texts.length === 0) throw new UsageError('score needs an image and at least one text: matchd score IMAGE TEXT... [--texts FILE] (or --dir DIR)');
  assertRegularFile(image);
  const matcher = await Matcher.open(modelDir, options);
  try {
    const results = await matcher.score(image, texts);
    if (values.json) {
      process.stdout.write(JSON.stringify({ image, model: matcher.manifest.name, provider: matcher.provider, results }, null, 2) + '\n');
    } else {
      process.stdout.write(formatTable(image, `${matcher.manifest.name} (${matcher.provider})`, results) + '\n');
    }
    return 0;
  } finally {
    matcher.close();
  }
}
