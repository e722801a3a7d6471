/**
 * @bench-scenario gme-preprocess
 *
 * GME-Qwen2-VL image preprocessing, JPEG bytes in memory → pixel_values [P, 1176] float32, per image:
 *   - ours: `prepareGmeImage` — sharp decodes at full size (PIL's convert("RGB") semantics), the addon resizes with
 *     Pillow's BICUBIC (bit-exact, both reference stages) and packs the patches, all off the event loop;
 *   - sharp path: sharp decodes and resizes straight to the processor's size with its own 'cubic' kernel (JPEG
 *     shrink-on-load allowed), then the same native packer. Faster where shrink-on-load applies, but not the
 *     reference's pixels: the table gives how far its uint8 image is from the Pillow-exact one.
 * Both read the header first to plan the sizes (the same smart_resize arithmetic). One sharp thread each
 * (matchd sets sharp.concurrency(1)); one image at a time. For scale, the Python reference itself
 * (tools/gme/preprocess_reference.py: Pillow 9.4 + numpy, what gme_inference.py costs) is timed on the same files,
 * in its own process (skipped with a note when /usr/bin/python3 lacks Pillow or numpy).
 *
 *   node --import tsx bench/gme-preprocess.ts [--json] [--runs 15] [--warmup 2] [--sizes 4032x3024,1280x960,640x480]
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import {
  type ScenarioResult, type Stats, describeMachine, emitResult, ensureJpegs, machineInfo, markdownTable, ms, progress,
  repoRoot, runWhenMain, stats, textTable,
} from './lib.ts';
import { rerunCommand, sectionHead } from './report.ts';
import { decodeRgb } from '../src/core/image/decode-rgb.ts';
import {
  GME_IMAGE_DEFAULTS, packGmeImage, patchRowLength, prepareGmeImage, resizeForGme,
} from '../src/core/model/families/gme-qwen2-vl/preprocess.ts';
import { fetchSize, processorSize } from '../src/core/model/families/gme-qwen2-vl/smart-resize.ts';
import { addon } from '../src/core/native.ts';

const SPEC = { ...GME_IMAGE_DEFAULTS, exifOrientation: false };

interface Row {
  image: string;
  processed: string;
  tokens: number;
  resizes: number;
  ours: Stats;
  sharp: Stats;
  /** The Python reference (Pillow + numpy), median ms; null when it could not run. */
  python: number | null;
  /** Ours split into stages (medians, ms). */
  stages: { decode: number; resize: number; pack: number };
  /** sharp's uint8 image vs the Pillow-exact one. */
  meanAbs: number;
  maxAbs: number;
}

export interface GmePreprocessResult extends ScenarioResult {
  scenario: 'gme-preprocess';
  options: { runs: number; warmup: number; sizes: [number, number][] };
  rows: Row[];
}

async function sharpPath(buf: Buffer): Promise<{ pixelValues: Float32Array; rgb: Buffer }> {
  const meta = await sharp(buf).metadata();
  const [fh, fw] = fetchSize(meta.height!, meta.width!, SPEC);
  const [h, w] = processorSize(fh, fw, SPEC);
  const rgb = await sharp(buf, { ignoreIcc: true })
    .resize(w, h, { fit: 'fill', kernel: 'cubic' })
    .toColourspace('srgb').removeAlpha().raw().toBuffer();
  const pixelValues = new Float32Array(((h * w) / 196) * patchRowLength(SPEC));
  await addon().packVisionPatches({ data: rgb, width: w, height: h, channels: 3 }, pixelValues, { ...SPEC, offset: 0 });
  return { pixelValues, rgb };
}

/** Median ms of the reference's preprocess() on `file`, timed inside Python (no interpreter start-up). */
function pythonMedian(file: string, runs: number): number | null {
  const code = [
    'import sys, time, statistics',
    `sys.path.insert(0, ${JSON.stringify(path.join(repoRoot, 'tools', 'gme'))})`,
    'from preprocess_reference import preprocess',
    'f, n = sys.argv[1], int(sys.argv[2])',
    'preprocess(f)',
    'ts = []',
    'for _ in range(n):',
    '    t = time.perf_counter(); preprocess(f); ts.append((time.perf_counter() - t) * 1000)',
    'print(statistics.median(ts))',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', code, file, String(runs)], { encoding: 'utf8' });
  if (r.status !== 0) {
    progress(`gme-preprocess: the Python reference did not run (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`);
    return null;
  }
  return Number(r.stdout.trim());
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function measure(file: string, o: { runs: number; warmup: number }): Promise<Row> {
  const buf = fs.readFileSync(file);
  const meta = await sharp(buf).metadata();
  for (let i = 0; i < o.warmup; i++) {
    await prepareGmeImage(buf, SPEC);
    await sharpPath(buf);
  }
  const ours: number[] = [], theirs: number[] = [];
  const decode: number[] = [], resize: number[] = [], pack: number[] = [];
  let resizes = 0;
  for (let i = 0; i < o.runs; i++) {
    // Interleaved, order alternating, so drift (thermal, other load) hits both alike.
    const a = () => timeIt(() => prepareGmeImage(buf, SPEC));
    const b = () => timeIt(() => sharpPath(buf));
    if (i % 2 === 0) { ours.push(await a()); theirs.push(await b()); } else { theirs.push(await b()); ours.push(await a()); }
    // The same work again, stage by stage.
    let t = performance.now();
    const decoded = await decodeRgb(buf, { exifOrientation: false });
    decode.push(performance.now() - t);
    t = performance.now();
    resizes = 0;
    let previous: unknown = decoded;
    const img = await resizeForGme(decoded, SPEC, (_stage, im) => {
      if (im !== previous) resizes++; // a stage whose size does not change hands its input on
      previous = im;
    });
    resize.push(performance.now() - t);
    const out = new Float32Array(img.patches * patchRowLength(SPEC));
    t = performance.now();
    await packGmeImage(img, SPEC, out);
    pack.push(performance.now() - t);
  }
  // Distance of sharp's pixels from the reference's.
  const exact = await resizeForGme(await decodeRgb(buf, { exifOrientation: false }), SPEC);
  const { rgb } = await sharpPath(buf);
  let sum = 0, max = 0;
  for (let i = 0; i < rgb.length; i++) {
    const d = Math.abs(rgb[i]! - exact.rgb.data[i]!);
    sum += d;
    max = Math.max(max, d);
  }
  const med = (xs: number[]) => stats(xs).median;
  return {
    image: `${meta.width}×${meta.height} JPEG`,
    processed: `${exact.rgb.width}×${exact.rgb.height}`,
    tokens: exact.visualTokens,
    resizes,
    ours: stats(ours),
    sharp: stats(theirs),
    python: pythonMedian(file, Math.max(3, Math.ceil(o.runs / 3))),
    stages: { decode: med(decode), resize: med(resize), pack: med(pack) },
    meanAbs: sum / rgb.length,
    maxAbs: max,
  };
}

const HEADER = [
  'image', '→ processed', 'visual tokens', 'Pillow resizes', 'ours median', 'ours min', 'sharp median', 'sharp min',
  'ours/sharp', 'ours: decode + resize + pack', 'sharp vs Pillow |Δ| mean / max', 'Python reference median',
];

function rows(list: Row[]): string[][] {
  return list.map((r) => [
    r.image, r.processed, String(r.tokens), String(r.resizes), ms(r.ours.median), ms(r.ours.min), ms(r.sharp.median),
    ms(r.sharp.min), `${(r.ours.median / r.sharp.median).toFixed(2)}×`,
    `${ms(r.stages.decode)} + ${ms(r.stages.resize)} + ${ms(r.stages.pack)}`, `${r.meanAbs.toFixed(2)} / ${r.maxAbs}`,
    r.python === null ? '–' : ms(r.python),
  ]);
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<GmePreprocessResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      runs: { type: 'string', default: '15' },
      warmup: { type: 'string', default: '2' },
      sizes: { type: 'string', default: '4032x3024,1280x960,640x480' },
    },
  });
  const sizes = values.sizes.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m) throw new Error(`--sizes: expected WxH[,WxH...], got '${values.sizes}'`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
  const o = { runs: Number(values.runs), warmup: Number(values.warmup), sizes };
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error(`--runs: expected an integer ≥ 1, got '${values.runs}'`);
  const list: Row[] = [];
  for (const [w, h] of sizes) {
    const [file] = await ensureJpegs(1, w, h);
    progress(`gme-preprocess: ${w}×${h}, ${o.runs} runs per path`);
    list.push(await measure(file!, o));
  }
  const machine = machineInfo();
  const table = [
    'gme-preprocess: JPEG bytes → GME pixel_values [P, 1176] float32, one image at a time, ms per image',
    `machine: ${describeMachine(machine)}`,
    `${o.runs} runs per path after ${o.warmup} warm-up runs, interleaved`,
    '',
    textTable(HEADER, rows(list)),
  ].join('\n');
  const markdown = [
    ...sectionHead({
      title: 'GME image preprocessing: Pillow-exact native path vs a sharp-only path (`bench/gme-preprocess.ts`)',
      date: new Date().toISOString(),
      machine,
      reproduce: { commands: [rerunCommand('gme-preprocess.ts', argv)] },
    }),
    '',
    'Per image, JPEG bytes already in memory → `pixel_values` [P, 1176] float32 (GME-Qwen2-VL, 256–1280 visual ' +
      'tokens). **ours** = `prepareGmeImage`: sharp decodes at full size like PIL\'s `convert("RGB")`, the addon ' +
      "resizes with Pillow's BICUBIC, bit-exact, through both reference stages (GME's fetch_image, then the " +
      "processor's smart_resize; a stage whose size does not change is skipped), then packs the patches. **sharp** = " +
      "sharp resizes straight to the processor's size with its 'cubic' kernel (shrink-on-load allowed), then the same " +
      "packer: not the reference's pixels (last column: |Δ| of its uint8 image from the Pillow-exact one). One sharp " +
      `thread; ${o.runs} runs per path after ${o.warmup} warm-up runs, interleaved; ms per image. The stage split is ` +
      'measured in separate runs of the same work. Last column: the Python reference (`tools/gme/preprocess_reference.py`, ' +
      "Pillow 9.4 + numpy: decode, both resizes, patches — what gme_inference.py's preprocessing costs), timed inside " +
      'its own process. No target: it records what reference-exact preprocessing costs.',
    '',
    markdownTable(HEADER, rows(list)),
  ].join('\n');
  const result: GmePreprocessResult = {
    scenario: 'gme-preprocess', date: new Date().toISOString(), machine, options: o, rows: list, table, markdown,
    allTargetsMet: true,
  };
  emitResult(result, values.json);
  return result;
}

runWhenMain(import.meta.url, 'gme-preprocess', main);
