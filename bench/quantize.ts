/**
 * @bench-scenario quantize
 *
 * int8 packages (`matchd model quantize`) against float32 on this CPU, in one run:
 *   forms      one linear layer (x [M, K] @ W [K, N] + b, M = 400 = batch 8 × 50 ViT-B/32 tokens) in each int8 form
 *              ONNX Runtime runs (bench/model/build-quant-formats.py): which one the quantizer should write
 *   compute    the ViT-B/32-shaped benchmark model's towers, float32 vs int8, engine runs on prepared tensors
 *              (as bench/compute.ts), variants interleaved round by round
 *   accuracy   64 JPEG files × 40 texts through `Matcher` with each package: how far the int8 cosines move and
 *              whether each image still orders the texts the same way
 *   gme        (with --gme F32_DIR,INT8_DIR) a GME-Qwen2-VL package pair: one image and four queries, time and cosines
 *
 *   node --import tsx bench/quantize.ts [--json] [--threads 2,1] [--rounds 5] [--seconds 1.5] [--gme F32,INT8]
 *
 * The int8 packages are made on first use with `matchd model quantize` (default options, and --quantize-projection
 * for the information row) into bench/models/.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PYTHON, benchModelDir, buildInfo, ensureBenchModel } from './build-model.ts';
import { imageRunner, pixelBatch, timeCell } from './compute.ts';
import { accuracyOf, gmePair, type Accuracy, type GmeResult } from './quantize-accuracy.ts';
import {
  type ScenarioResult, benchDir, describeMachine, emitResult, intList, machineInfo, markdownTable, ms, progress, repoRoot,
  runWhenMain, stats, textTable,
} from './lib.ts';

const INT8 = path.join(benchDir, 'models', 'clip-b32-random-int8');
const INT8_ALL = path.join(benchDir, 'models', 'clip-b32-random-int8-all');
const FORMS_DIR = path.join(benchDir, 'models', 'quant-forms');
const FORM_LABEL: Record<string, string> = {
  fp32: 'float32 MatMul + Add (baseline)',
  mmi: 'DynamicQuantizeLinear + MatMulInteger (standard ops, fused by ORT) — what the quantizer writes',
  dqmm: 'DynamicQuantizeMatMul (com.microsoft, written directly)',
  nbits32a4: 'MatMulNBits 8-bit, block 32, accuracy_level 4',
  nbits128a4: 'MatMulNBits 8-bit, block 128, accuracy_level 4',
  nbits32a0: 'MatMulNBits 8-bit, block 32, accuracy_level 0',
  qlinear: 'QLinearMatMul (static activation scale: needs calibration)',
};

interface ComputeRow { tower: 'image' | 'text'; threads: number; batch: number; fp32: number[]; int8: number[] }

export interface QuantizeResult extends ScenarioResult {
  scenario: 'quantize';
  forms: { form: string; shape: string; ms: number; speedup: number; relErr: number | null }[];
  compute: (ComputeRow & { ratio: number })[];
  accuracy: { default: Accuracy; allProducts: Accuracy };
  sizes: Record<string, number>;
  gme: GmeResult | null;
  load: number[];
  targets: { line: string; met: boolean }[];
}

/** `matchd model quantize` into `out` unless it is there. */
function ensureInt8(out: string, extra: string[] = []): void {
  if (fs.existsSync(path.join(out, 'quantize.json'))) return;
  progress(`quantize: making ${path.relative(repoRoot, out)} (matchd model quantize${extra.length ? ` ${extra.join(' ')}` : ''})`);
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'model', 'quantize', benchModelDir('clip-b32-random'), '--out', out, '--force', ...extra], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`matchd model quantize failed (${r.status})`);
}

function packageBytes(dir: string, files: string[]): number {
  return files.reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
}

const median = (xs: number[]) => stats(xs).median;

async function timeForms(threads: number, rounds: number): Promise<QuantizeResult['forms']> {
  if (!fs.existsSync(path.join(FORMS_DIR, 'formats.json'))) {
    const r = spawnSync(PYTHON, [path.join(benchDir, 'model', 'build-quant-formats.py'), FORMS_DIR], { stdio: ['ignore', 2, 2] });
    if (r.status !== 0) throw new Error('bench/model/build-quant-formats.py failed');
  }
  const { InferenceSession } = await import('../src/core/engine.ts');
  const spec = JSON.parse(fs.readFileSync(path.join(FORMS_DIR, 'formats.json'), 'utf8')) as { shapes: [number, number][]; forms: string[] };
  const out: QuantizeResult['forms'] = [];
  const M = 400;
  for (const [k, n] of spec.shapes) {
    progress(`quantize: forms ${k}x${n}`);
    const x = { x: { type: 'float32' as const, dims: [M, k], data: pixelBatch(Math.ceil((M * k) / (3 * 224 * 224))).subarray(0, M * k) } };
    const sessions = await Promise.all(spec.forms.map((f) => InferenceSession.open(path.join(FORMS_DIR, `${f}_${k}x${n}.onnx`), { intraOpThreads: threads, graphCache: false })));
    const ys: Float32Array[] = [];
    for (const s of sessions) ys.push((await s.run(x, ['y'])).y!.data as Float32Array);
    const times: number[][] = sessions.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (const [i, s] of sessions.entries()) {
        const t0 = performance.now();
        for (let j = 0; j < 10; j++) await s.run(x, ['y']);
        times[i]!.push((performance.now() - t0) / 10);
      }
    }
    const ref = ys[0]!;
    const peak = ref.reduce((m: number, v: number) => Math.max(m, Math.abs(v)), 0);
    spec.forms.forEach((f, i) => {
      const err = f === 'fp32' ? null : ys[i]!.reduce((m: number, v: number, j: number) => Math.max(m, Math.abs(v - ref[j]!)), 0) / peak;
      out.push({ form: f, shape: `${k}×${n}`, ms: median(times[i]!), speedup: median(times[0]!) / median(times[i]!), relErr: err });
    });
    sessions.forEach((s) => s.dispose());
  }
  return out;
}

async function timeCompute(threadsList: number[], rounds: number, seconds: number): Promise<QuantizeResult['compute']> {
  const { InferenceSession } = await import('../src/core/engine.ts');
  const { tokenBatch } = await import('./compute.ts');
  const rows: ComputeRow[] = [];
  for (const threads of threadsList) {
    const open = (dir: string, f: string) => InferenceSession.open(path.join(dir, f), { intraOpThreads: threads, graphCache: false });
    const fp = benchModelDir('clip-b32-random');
    const [fi, qi, ft, qt] = await Promise.all([open(fp, 'image.onnx'), open(INT8, 'image.onnx'), open(fp, 'text.onnx'), open(INT8, 'text.onnx')]);
    const text = (s: typeof ft, b: number) => {
      const { ids, mask } = tokenBatch(b);
      const feeds = { input_ids: { type: 'int64' as const, dims: [b, 77], data: ids }, attention_mask: { type: 'int64' as const, dims: [b, 77], data: mask } };
      return () => s.run(feeds, ['text_embeds']);
    };
    const cells: [ComputeRow, () => Promise<unknown>, () => Promise<unknown>][] = [
      ...[1, 8].map((b) => [{ tower: 'image', threads, batch: b, fp32: [], int8: [] }, imageRunner(fi, b), imageRunner(qi, b)] as [ComputeRow, () => Promise<unknown>, () => Promise<unknown>]),
      [{ tower: 'text', threads, batch: 32, fp32: [], int8: [] }, text(ft, 32), text(qt, 32)],
    ];
    // Interleaved: each round times every cell in both precisions, so a busy stretch falls on both.
    for (let r = 0; r < rounds; r++) {
      for (const [row, f, q] of cells) {
        progress(`quantize: compute round ${r + 1}/${rounds}, ${row.tower} batch ${row.batch}, ${threads} threads`);
        const [a, b] = r % 2 ? [q, f] : [f, q];
        const ta = await timeCell(a, 1, seconds);
        const tb = await timeCell(b, 1, seconds);
        const [tf, tq] = r % 2 ? [tb, ta] : [ta, tb];
        row.fp32.push((row.batch * 1000) / median(tf.all));
        row.int8.push((row.batch * 1000) / median(tq.all));
      }
    }
    rows.push(...cells.map(([row]) => row));
    [fi, qi, ft, qt].forEach((s) => s.dispose());
  }
  return rows.map((r) => ({ ...r, ratio: median(r.int8) / median(r.fp32) }));
}

function render(r: Omit<QuantizeResult, 'table' | 'markdown'>, argv: string[], cores: number): { table: string; markdown: string } {
  const formRows = r.forms.map((f) => [FORM_LABEL[f.form] ?? f.form, f.shape, ms(f.ms), `${f.speedup.toFixed(2)}×`, f.relErr === null ? '–' : f.relErr.toExponential(1)]);
  const formHeader = ['form', 'K×N', 'ms per run (M = 400)', 'vs float32', 'max |Δ| / max |y|'];
  const computeRows = r.compute.map((c) => [c.tower, String(c.threads), String(c.batch), median(c.fp32).toFixed(1), median(c.int8).toFixed(1), `${c.ratio.toFixed(2)}×`,
    `${Math.min(...c.int8.map((v, i) => v / c.fp32[i]!)).toFixed(2)}–${Math.max(...c.int8.map((v, i) => v / c.fp32[i]!)).toFixed(2)}`]);
  const computeHeader = ['tower', 'threads', 'batch', 'float32 items/s', 'int8 items/s', 'int8 / float32', 'per round'];
  const acc = (name: string, a: Accuracy) => [name, a.embeddingCosMin.toFixed(5), a.maxDelta.toFixed(4), a.meanDelta.toFixed(5), `${(a.pairAgreement * 100).toFixed(2)} %`,
    `${a.top1}/${a.images}`, `${a.fp32Range[0].toFixed(3)} … ${a.fp32Range[1].toFixed(3)}`, a.medianGap.toExponential(1)];
  const accHeader = ['package', 'min cosine to float32 embedding', 'max \\|Δ cosine\\|', 'mean \\|Δ cosine\\|', 'text pairs in the same order', 'same top text', 'float32 cosines', 'median gap between two texts'];
  const accRows = [acc('int8 (default: projections float32)', r.accuracy.default), acc('int8, --quantize-projection (info)', r.accuracy.allProducts)];
  const sizeLine = Object.entries(r.sizes).map(([k, v]) => `${k} ${(v / 1e6).toFixed(0)} MB`).join(', ');
  const gmeLines = r.gme ? [
    '',
    `### GME-Qwen2-VL (${r.gme.label})`,
    '',
    markdownTable(['package', 'load s', 'one image (P visual tokens), s', 'four queries, s', 'image embedding cos to float32', 'query embedding cos to float32 (min)', 'max \\|Δ image–query cosine\\|'],
      r.gme.rows.map((g) => [g.name, g.loadS.toFixed(1), `${g.imageS.toFixed(2)} (${r.gme!.visualTokens})`, g.textS.toFixed(2), g.imageCos === null ? '–' : g.imageCos.toFixed(5),
        g.textCosMin === null ? '–' : g.textCosMin.toFixed(5), g.maxDelta === null ? '–' : g.maxDelta.toFixed(4)])),
    '',
    `Threads: ${r.gme.threads}. ${r.gme.note}`,
  ] : [];
  const targetLines = r.targets.map((t) => `- ${t.met ? '✅' : '❌'} ${t.line}`);
  const table = [
    `quantize: int8 vs float32, ${describeMachine(r.machine)}`, '',
    textTable(formHeader, formRows), '', textTable(computeHeader, computeRows), '',
    textTable(accHeader.map((h) => h.replace(/\\/g, '')), accRows), '', `sizes: ${sizeLine}`, '', ...r.targets.map((t) => t.line),
  ].join('\n');
  const args = argv.filter((a) => a !== '--json').join(' ');
  const markdown = [
    '## int8 packages: `matchd model quantize` vs float32 (`bench/quantize.ts`)',
    '',
    `- Date: ${r.date.slice(0, 10)}`,
    `- Machine: ${describeMachine(r.machine)}; ISA: ${isa()}`,
    `- Model: clip-b32-random (ViT-B/32-shaped, random weights, seed ${buildInfo('clip-b32-random').seed}) and its int8 package made by \`matchd model quantize\` ` +
      `(MatMul weights int8 per output column, activations uint8 per tensor at run time; projections, norms, embeddings, the patch convolution and attention products float32). Sizes: ${sizeLine}.`,
    `- Load average (1 min) at the start and after each part: ${r.load.map((l) => l.toFixed(2)).join(', ')} (a shared machine: ratios come from interleaved rounds of one run).`,
    '- Reproduce:',
    '',
    '  ```sh',
    `  node --import tsx bench/quantize.ts${args ? ` ${args}` : ''}`,
    '  ```',
    '',
    '### Targets',
    '',
    ...targetLines,
    '',
    `### Which int8 form (one linear layer, ${r.compute[0]?.threads ?? cores} threads, median of ${'10-run'} means)`,
    '',
    markdownTable(formHeader, formRows),
    '',
    'MatMulNBits with 8 bits is slower than float32 here and QLinearMatMul needs calibrated activation scales, so the ' +
      'quantizer writes the standard DynamicQuantizeLinear + MatMulInteger form, which ONNX Runtime fuses into its ' +
      'DynamicQuantizeMatMul kernel (u8 × s8, AVX-512 VNNI / AMX on this CPU).',
    '',
    '### Compute bound: engine runs on prepared tensors (items/s, median of interleaved rounds)',
    '',
    markdownTable(computeHeader, computeRows),
    '',
    '### Accuracy on the model\'s own outputs',
    '',
    markdownTable(accHeader, accRows),
    '',
    `Method: the random-weight model has no right answers, so float32 is the reference. ${r.accuracy.default.images} generated 1024×768 JPEG files and ${r.accuracy.default.texts} ` +
      'texts (the synthetic vocabulary\'s real words) go through `Matcher` with the float32 and the int8 package (batches of 8, as the daemon runs them). ' +
      '"max |Δ cosine|": over every image–text pair, |cos_int8 − cos_fp32|. "text pairs in the same order": for every image and every pair of texts, ' +
      'whether int8 orders the two the way float32 does (ties in float32 excluded). A random-weight model spreads its cosines far less than a trained one ' +
      '(the median gap between two texts is in the table), so order flips here are an upper bound for a trained model with the same rounding. ' +
      'Dynamic quantization takes each activation\'s range per batch: an image\'s int8 embedding can move slightly with the other images of its batch.',
    ...gmeLines,
  ].join('\n');
  return { table, markdown };
}

function isa(): string {
  try {
    const flags = /^flags\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    return ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'amx_int8'].filter((f) => flags.includes(f)).join(', ') || 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<QuantizeResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      threads: { type: 'string', default: String(os.availableParallelism()) + (os.availableParallelism() > 1 ? ',1' : '') },
      rounds: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '1.5' },
      gme: { type: 'string' },
    },
  });
  const threads = intList('threads', values.threads, 1);
  const rounds = intList('rounds', values.rounds, 1)[0]!;
  const seconds = Number(values.seconds);
  ensureBenchModel('clip-b32-random');
  ensureInt8(INT8);
  ensureInt8(INT8_ALL, ['--quantize-projection']);
  const load = [os.loadavg()[0]!];
  const forms = await timeForms(threads[0]!, rounds);
  load.push(os.loadavg()[0]!);
  const compute = await timeCompute(threads, rounds, seconds);
  load.push(os.loadavg()[0]!);
  progress('quantize: accuracy');
  const accuracy = { default: await accuracyOf(benchModelDir('clip-b32-random'), INT8), allProducts: await accuracyOf(benchModelDir('clip-b32-random'), INT8_ALL) };
  load.push(os.loadavg()[0]!);
  let gme: GmeResult | null = null;
  if (values.gme) {
    const [f32, i8] = values.gme.split(',');
    if (!f32 || !i8) throw new Error('--gme takes FLOAT32_DIR,INT8_DIR');
    gme = await gmePair(f32, i8, threads[0]!);
    load.push(os.loadavg()[0]!);
  }
  const files = ['image.onnx', 'text.onnx'];
  const sizes = { 'float32 towers': packageBytes(benchModelDir('clip-b32-random'), files), 'int8 towers': packageBytes(INT8, files) };
  const all = Math.max(...threads);
  const b8 = compute.find((c) => c.tower === 'image' && c.batch === 8 && c.threads === all);
  const a = accuracy.default;
  const targets = [
    { met: !!b8 && b8.ratio >= 1.8, line: `int8 / float32 compute bound, image tower, batch 8, ${all} threads = ${b8 ? b8.ratio.toFixed(2) : 'not measured'}× (target ≥ 1.8×): ${b8 && b8.ratio >= 1.8 ? 'met' : 'NOT met'}${b8 ? ` (${median(b8.int8).toFixed(1)} vs ${median(b8.fp32).toFixed(1)} images/s)` : ''}` },
    { met: a.maxDelta < 0.01, line: `image–text cosines, max |int8 − float32| over ${a.images} × ${a.texts} pairs = ${a.maxDelta.toFixed(4)} (target < 0.01): ${a.maxDelta < 0.01 ? 'met' : 'NOT met'}` },
    { met: a.pairAgreement >= 0.95, line: `texts ordered the same per image, over ${a.pairs} (image, text pair) tests = ${(a.pairAgreement * 100).toFixed(2)} % (target ≥ 95 %): ${a.pairAgreement >= 0.95 ? 'met' : 'NOT met'}` },
  ];
  const partial = {
    scenario: 'quantize' as const, date: new Date().toISOString(), machine: machineInfo(), forms, compute, accuracy, sizes, gme, load, targets,
    allTargetsMet: targets.every((t) => t.met),
  };
  const result: QuantizeResult = { ...partial, ...render(partial, argv, all) };
  emitResult(result, values.json);
  return result;
}

runWhenMain(import.meta.url, 'quantize', main);
