/**
 * `matchd score IMAGE TEXT...`            one image, a table (or --json)
 * `matchd score --dir DIR --texts FILE`   a folder, JSON Lines on stdout, progress on a TTY, bad files counted
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MatchdError } from '../core/errors.ts';
import { Matcher, type TextScore } from '../core/matcher.ts';
import { UsageError, defaultModelDir, positiveInt } from './args.ts';
import { assertRegularFile, listImageFiles, skippedSummary } from './files.ts';

export const scoreUsage = `matchd score IMAGE TEXT... [--json] [--model DIR]
matchd score --dir DIR --texts FILE [--recursive] [--model DIR]
  --model DIR        model package (default: the built-in demo, models/demo)
  --json             print JSON instead of a table (single image)
  --dir DIR          score every image file in DIR; JSON Lines on stdout, one object per file
  --texts FILE       texts, one per line (UTF-8; blank lines and lines starting with # are skipped)
  --recursive        include sub-folders of --dir
  --verbose          with --dir, list every file skipped (other extensions, hidden, symlinks, non-regular files)
  --provider P       cpu (default) or cuda
  --threads N        ONNX Runtime intra-op threads
  --batch N          images per engine run (default 16)`;

/** Read a texts file strictly: invalid UTF-8 is an error naming the line, never silently replaced. */
export function readTextsFile(file: string): string[] {
  const bytes = fs.readFileSync(file);
  let content: string;
  try {
    content = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    let line = 1;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0x0a) line++;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, i + 1), { stream: true });
      } catch {
        break;
      }
    }
    throw new MatchdError('MATCHD_TEXT_INVALID', `${file}: invalid UTF-8 (around line ${line})`, { file, line });
  }
  const texts = content.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (texts.length === 0) throw new MatchdError('MATCHD_TEXT_INVALID', `${file}: no texts (one per line)`, { file });
  return texts;
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
    if (!values.texts) throw new UsageError('--dir needs --texts FILE');
    if (positionals.length) throw new UsageError('give either IMAGE TEXT... or --dir, not both');
    const texts = readTextsFile(values.texts);
    const listing = listImageFiles(values.dir, values.recursive);
    const files = listing.images;
    process.stderr.write(skippedSummary(listing.skipped, values.verbose));
    const matcher = await Matcher.open(modelDir, options);
    try {
      const embeddedTexts = await matcher.embedTexts(texts);
      let done = 0;
      const failures = new Map<string, number>();
      const chunk = 64;
      for (let s = 0; s < files.length; s += chunk) {
        const slice = files.slice(s, s + chunk);
        const images = await matcher.embedImages(slice);
        images.forEach((img, i) => {
          const file = slice[i]!;
          if (img.ok) {
            process.stdout.write(JSON.stringify({ file, ok: true, results: matcher.scoreVector(img.vector, embeddedTexts) }) + '\n');
          } else {
            failures.set(img.error.code, (failures.get(img.error.code) ?? 0) + 1);
            process.stdout.write(JSON.stringify({ file, ok: false, error: { code: img.error.code, message: img.error.message } }) + '\n');
          }
        });
        done += slice.length;
        progress(done, files.length, [...failures.values()].reduce((a, b) => a + b, 0));
      }
      const failed = [...failures.values()].reduce((a, b) => a + b, 0);
      const byCode = [...failures].sort(([a], [b]) => a.localeCompare(b)).map(([c, n]) => `${c}: ${n}`).join(', ');
      process.stderr.write(`matchd: scored ${files.length - failed} of ${files.length} image(s)${failed ? `; ${failed} failed (${byCode})` : ''}\n`);
      return 0;
    } finally {
      matcher.close();
    }
  }

  const [image, ...texts] = positionals;
  if (!image || texts.length === 0) throw new UsageError(`score needs an image and at least one text\n${scoreUsage}`);
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
