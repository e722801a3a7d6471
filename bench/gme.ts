/**
 * @bench-scenario gme
 *
 * GME-Qwen2-VL-2B on this CPU: a 2B-shaped package with random weights (real sizes: vision 32 × 1280-wide blocks,
 * decoder 28 × 1536-wide layers, vocabulary 151 936; built by the project's own tools, bench/gme-package.ts) run by
 * matchd, and the same two graphs run by onnxruntime-node on identical inputs, in the same run:
 *   - load time (both graphs), peak RSS;
 *   - seconds per image at 256 and at 1280 visual tokens (448×448 and 1120×896 JPEG files: exactly those counts
 *     through the real preprocessing), one image at a time;
 *   - texts per second: a batch of 16 short queries (25–35 prompt tokens), and one query alone.
 * Target: matchd / onnxruntime-node ≤ 1.0× in CPU time per run (the process's user + system time: on a shared machine
 * wall time mostly measures the neighbours; wall-time ratios are reported too) for the images and the query batch.
 * The two engines' embeddings
 * are compared too (cosine), which shows both ran the same graphs on the same inputs.
 *
 *   node --import tsx bench/gme.ts [--json] [--package DIR] [--threads 2] [--rounds 2] [--text-rounds 3]
 *        [--image-rounds 2] [--large-rounds 1] [--only ours,onnxruntime-node]
 *
 * --package DIR uses a package you have (float32 on CPU; a float16 package runs, slowly); without it
 * bench/models/gme-2b-random is built on first use (~3 min, needs numpy + onnx for /usr/bin/python3).
 * Time: a 1280-token image costs on the order of 100 s on 2 cores, so each engine's child process does: load, 1 + 3
 * query batches, 3 single queries, 1 + 2 images of 256 tokens and 1 of 1280 tokens (~4–5 min on the 2-core machine
 * at a load average of 4). --rounds 2 (the default) runs that pair of children twice, the order swapped in the
 * second round: ~17 minutes in all there, more when other work competes for the cores; --rounds 1 halves it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type ChildOptions, type ChildResult, type Impl, IMPLS, type Timed, runChild } from './gme-child.ts';
import { type GmeInputs, type InputImage, prepareInputs, readInputs } from './gme-inputs.ts';
import { type GmePackageInfo, describeGmePackage, ensureGmeBenchPackage } from './gme-package.ts';
import {
  type ScenarioResult, describeMachine, emitResult, intList, machineInfo, markdownTable, progress, runJsonChild,
  runWhenMain, stats, textTable,
} from './lib.ts';

const LABEL: Record<Impl, string> = { ours: 'matchd', 'onnxruntime-node': 'onnxruntime-node' };

interface Merged {
  impl: Impl;
  version: string;
  loadMs: number[];
  rssAfterLoadMiB: number;
  peakRssMiB: number;
  warmup: { textsMs: number[]; image256Ms: number[] };
  texts: Timed;
  oneText: Timed;
  image256: Timed;
  image1280: Timed;
  embeddings: ChildResult['embeddings'];
}

export interface GmeBenchResult extends ScenarioResult {
  scenario: 'gme';
  package: GmePackageInfo;
  options: ChildOptions & { rounds: number; only: Impl[] };
  images: Omit<InputImage, 'pixelValuesFile' | 'positionIdsFile' | 'ids'>[];
  queries: { count: number; promptTokens: [number, number] };
  engines: Merged[];
  /** Cosine between the engines' embeddings, over all queries and both images (min). */
  parity: { minCos: number; items: number } | null;
  /** 1-minute load average before the first child and after each. */
  load: number[];
  wallSeconds: number;
  targets: { what: string; value: number; met: boolean; line: string }[];
}

const cat = (ts: Timed[]): Timed => {
  const split = ts.flatMap((t) => t.split ?? []);
  return {
    ms: ts.flatMap((t) => t.ms), cpuMs: ts.flatMap((t) => t.cpuMs), load: ts.flatMap((t) => t.load), ...(split.length ? { split } : {}),
  };
};

function merge(rs: ChildResult[]): Merged {
  const last = rs.at(-1)!;
  return {
    impl: last.impl, version: last.version, loadMs: rs.map((r) => r.loadMs),
    rssAfterLoadMiB: Math.max(...rs.map((r) => r.rssAfterLoadMiB)), peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)),
    warmup: { textsMs: rs.map((r) => r.warmup.textsMs), image256Ms: rs.map((r) => r.warmup.image256Ms) },
    texts: cat(rs.map((r) => r.texts)), oneText: cat(rs.map((r) => r.oneText)),
    image256: cat(rs.map((r) => r.image256)), image1280: cat(rs.map((r) => r.image1280)), embeddings: last.embeddings,
  };
}

function cosine(a: number[], b: number[]): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

function parityOf(a: Merged | undefined, b: Merged | undefined): GmeBenchResult['parity'] {
  if (!a || !b) return null;
  const pairs: [number[], number[]][] = a.embeddings.queries.map((q, i) => [q, b.embeddings.queries[i]!]);
  pairs.push([a.embeddings.image256, b.embeddings.image256]);
  if (a.embeddings.image1280 && b.embeddings.image1280) pairs.push([a.embeddings.image1280, b.embeddings.image1280]);
  return { minCos: Math.min(...pairs.map(([x, y]) => cosine(x, y))), items: pairs.length };
}

const med = (xs: number[]) => stats(xs).median;
const sec = (msec: number) => (Number.isFinite(msec) ? (msec / 1000).toFixed(msec < 10_000 ? 2 : 1) : '–');
const spread = (xs: number[], f: (x: number) => string) => (xs.length > 1 ? ` (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : '');
const loadRange = (xs: number[]) => (xs.length ? `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}` : '–');

interface Row {
  what: string;
  unit: string;
  /** Wall time: median (min–max); CPU time: median. */
  values: Partial<Record<Impl, string>>;
  cpu: Partial<Record<Impl, string>>;
  /** matchd / onnxruntime-node: CPU-time medians (the targets), wall-time medians and minimums (the least disturbed runs). */
  cpuRatio: number;
  ratio: number;
  minRatio: number;
  load: string;
  target: boolean;
}

function rowsOf(r: Pick<GmeBenchResult, 'engines' | 'queries'>): Row[] {
  const e = (impl: Impl) => r.engines.find((x) => x.impl === impl);
  const ours = e('ours'), base = e('onnxruntime-node');
  const ratio = (f: (m: Merged) => number) => (ours && base ? f(ours) / f(base) : NaN);
  const n = r.queries.count;
  const timeRow = (what: string, pick: (m: Merged) => Timed, target: boolean): Row => ({
    what, unit: 's', target,
    values: Object.fromEntries(r.engines.map((m) => [m.impl, `${sec(med(pick(m).ms))}${spread(pick(m).ms, sec)}`])),
    cpu: Object.fromEntries(r.engines.map((m) => [m.impl, sec(med(pick(m).cpuMs))])),
    cpuRatio: ratio((m) => med(pick(m).cpuMs)),
    ratio: ratio((m) => med(pick(m).ms)),
    minRatio: ratio((m) => Math.min(...pick(m).ms)),
    load: loadRange(r.engines.flatMap((m) => pick(m).load)),
  });
  const rows: Row[] = [
    {
      what: 'load: both graphs (+ tokenizer, checks for matchd)', unit: 's', target: false,
      values: Object.fromEntries(r.engines.map((m) => [m.impl, `${sec(med(m.loadMs))}${spread(m.loadMs, sec)}`])),
      cpu: {}, cpuRatio: NaN, ratio: ratio((m) => med(m.loadMs)), minRatio: ratio((m) => Math.min(...m.loadMs)), load: '–',
    },
    timeRow('image, 256 visual tokens (448×448 JPEG), per image', (m) => m.image256, true),
    timeRow('image, 1280 visual tokens (1120×896 JPEG), per image', (m) => m.image1280, true),
    timeRow(`${n} queries in one batch, per batch`, (m) => m.texts, true),
    {
      what: `texts per second (${n}-query batches)`, unit: 'texts/s', target: false,
      values: Object.fromEntries(r.engines.map((m) => [m.impl, ((n * 1000) / med(m.texts.ms)).toFixed(2)])),
      cpu: {}, cpuRatio: NaN, ratio: ratio((m) => med(m.texts.ms)), minRatio: ratio((m) => Math.min(...m.texts.ms)), load: '–',
    },
    timeRow('one query alone', (m) => m.oneText, false),
    {
      what: 'peak RSS of the process (load + every run)', unit: 'MiB', target: false,
      values: Object.fromEntries(r.engines.map((m) => [m.impl, m.peakRssMiB.toFixed(0)])),
      cpu: {}, cpuRatio: NaN, ratio: ratio((m) => m.peakRssMiB), minRatio: NaN, load: '–',
    },
    {
      what: 'RSS after load', unit: 'MiB', target: false,
      values: Object.fromEntries(r.engines.map((m) => [m.impl, m.rssAfterLoadMiB.toFixed(0)])),
      cpu: {}, cpuRatio: NaN, ratio: ratio((m) => m.rssAfterLoadMiB), minRatio: NaN, load: '–',
    },
  ];
  return rows;
}

function targetsOf(rows: Row[]): GmeBenchResult['targets'] {
  // A measure this run skipped (--large-rounds 0) is no target: its row says '–'.
  return rows.filter((row) => row.target && Number.isFinite(row.ratio)).map((row) => {
    const met = Number.isFinite(row.cpuRatio) && row.cpuRatio <= 1.0;
    const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : 'not measured');
    return {
      what: row.what, value: row.cpuRatio, met,
      line: `${row.what}: matchd / onnxruntime-node = ${x(row.cpuRatio)} in CPU time (target ≤ 1.0×): ${met ? 'met' : 'NOT met'} ` +
        `(wall time: ${x(row.ratio)} of the medians, ${x(row.minRatio)} of the minimums)`,
    };
  });
}

function render(r: Omit<GmeBenchResult, 'table' | 'markdown'>, argv: string[]): { table: string; markdown: string } {
  const rows = rowsOf(r);
  const header = [
    'measure', 'unit', ...r.engines.map((m) => `${LABEL[m.impl]}: wall`), ...r.engines.map((m) => `${LABEL[m.impl]}: CPU`),
    'ratio, CPU', 'ratio, wall', 'ratio, wall minimums', 'load avg (1 min) during',
  ];
  const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
  const cells = rows.map((row) => [
    row.what, row.unit, ...r.engines.map((m) => row.values[m.impl] ?? '–'), ...r.engines.map((m) => row.cpu[m.impl] ?? '–'),
    x(row.cpuRatio), x(row.ratio), x(row.minRatio), row.load,
  ]);
  const p = r.package;
  const gb = (b: number) => (b / 1e9).toFixed(2);
  const pkgLine = `${p.name} (\`${p.dir}\`), ${p.weights} weights, embedding ${p.embeddingSize}; vision.onnx.data ${gb(p.visionBytes)} GB, ` +
    `decoder.onnx.data ${gb(p.decoderBytes)} GB${p.importedFrom ? `; imported from ${p.importedFrom}` : ''}`;
  const versions = r.engines.map((m) => `${LABEL[m.impl]}: ${m.version}`);
  const base = r.engines.find((m) => m.impl === 'onnxruntime-node');
  const splitLine = (t: Timed | undefined, what: string) =>
    t?.split?.length ? `${what}: vision ${sec(med(t.split.map((s) => s.vision)))} s + decoder ${sec(med(t.split.map((s) => s.decoder)))} s` : null;
  const splits = [splitLine(base?.image256, '256 tokens'), splitLine(base?.image1280, '1280 tokens')].filter(Boolean);
  const parity = r.parity
    ? `embeddings, matchd vs onnxruntime-node: min cosine ${r.parity.minCos.toFixed(7)} over ${r.parity.items} items (${r.queries.count} queries, ${r.parity.items - r.queries.count} image${r.parity.items - r.queries.count === 1 ? '' : 's'})`
    : 'embeddings not compared (one engine only)';
  const warm = r.engines.map((m) => `${LABEL[m.impl]} ${sec(med(m.warmup.textsMs))} s / ${sec(med(m.warmup.image256Ms))} s`).join(', ');
  const table = [
    `gme: GME-Qwen2-VL-2B-shaped package (${pkgLine}) on CPU, ${r.options.threads} intra-op threads`,
    `machine: ${describeMachine(r.machine)}`,
    ...versions,
    '',
    textTable(header, cells),
    '',
    parity,
    `load average (1 min) before the first child and after each: ${r.load.map((l) => l.toFixed(2)).join(', ')}; whole scenario ${(r.wallSeconds / 60).toFixed(1)} min`,
    ...r.targets.map((t) => t.line),
  ].join('\n');
  const args = argv.filter((a) => a !== '--json').join(' ');
  const opt = r.options;
  const markdown = [
    '## GME-Qwen2-VL-2B on CPU: matchd vs onnxruntime-node on the same graphs (`bench/gme.ts`)',
    '',
    `- Date: ${r.date.slice(0, 10)}`,
    `- Machine: ${describeMachine(r.machine)}`,
    `- Model: ${pkgLine}. GME-2B's real shapes (vision: 32 blocks, width 1280; decoder: 28 layers, width 1536, ` +
      '12 heads / 2 KV heads, vocabulary 151 936), random weights: the speed and memory of the real model, meaningless scores.',
    `- Versions: ${versions.join('; ')}`,
    `- Settings, identical for both engines: ${opt.threads} intra-op threads, sequential execution, graph optimisation \`all\`, ` +
      'CPU arena and memory pattern on, thread-pool spinning off (matchd\'s defaults), float32.',
    '- Reproduce (the package is built on first use, ~3 min; or pass `--package DIR`):',
    '',
    '  ```sh',
    '  apt-get install -y python3-numpy python3-onnx   # once, to build the package',
    '  npm run bench:setup                             # once: onnxruntime-node',
    '  node --import tsx bench/gme.ts                  # builds bench/models/gme-2b-random on first use',
    '  ```',
    ...(args ? ['', `  This run: \`node --import tsx bench/gme.ts ${args}\`${r.package.importedFrom ? ' (that package was made the same way: ' +
      '`tools/gme/make_tiny_checkpoint.py --size 2b --dtype BF16 --shards 2`, then `matchd model import`)' : ''}.`] : []),
    '',
    '### Targets (ratios from this one run)',
    '',
    'Judged on CPU time (user + system of the engine\'s process over each run, all its threads): on this shared 2-core ' +
      'machine the wall time of a run mostly measures what else was running (the same run of the same engine varied up to ' +
      '4× in wall time), while CPU time counts the work the engine did. Wall-time ratios are given next to them.',
    '',
    ...r.targets.map((t) => `- ${t.met ? '✅' : '❌'} ${t.line}`),
    '',
    '### Figures',
    '',
    `Median (min–max) over ${opt.rounds} round${opt.rounds > 1 ? 's' : ''} (one child process per engine per round${opt.rounds > 1 ? ', the order swapped each round' : ''}) of ` +
      `${opt.imageRounds} runs of the 256-token image, ${opt.largeRounds} of the 1280-token image, ${opt.textRounds} of the ` +
      `${r.queries.count}-query batch and ${opt.textRounds} of one query per round and engine. Wall: seconds from call to ` +
      'result, median (min–max); CPU: the process\'s CPU seconds over the run, median. Ratios are matchd / onnxruntime-node ' +
      '(lower is better for matchd): of the CPU-time medians, of the wall-time medians, and of the wall-time minimums (the ' +
      'runs least disturbed by other work). The last column is the 1-minute load average at the start of those runs ' +
      '(2 cores: above 2 means other work was competing for them).',
    '',
    markdownTable(header, cells),
    '',
    `- ${parity}${r.parity && r.parity.minCos > 0.9999 ? ': the same graphs on the same inputs' : ''}.`,
    `- Whole scenario: ${(r.wallSeconds / 60).toFixed(1)} min. Load average (1 min) before the first child and after each: ` +
      `${r.load.map((l) => l.toFixed(2)).join(', ')}. The machine is shared with other engineers' work, so absolute figures ` +
      'carry that noise; the ratios come from the same run, the engines alternating.',
    ...(splits.length ? [`- Where the time goes (onnxruntime-node's runs, medians): ${splits.join('; ')}.`] : []),
    `- Warm-up runs, not in the table (first query batch / first 256-token image of each process): ${warm}. The 1280-token ` +
      'image is timed on its first run in each process, for both engines alike (a warm-up would cost as much as the run).',
    '',
    '### What ran',
    '',
    '- Images: generated JPEG files (smooth colour fields with noise, quality 85) whose sizes give exactly 256 and 1280 ' +
      `visual tokens through the real preprocessing: ${r.images.map((i) => `${i.width}×${i.height} → ${i.processed[1]}×${i.processed[0]}, ` +
      `${i.patches} patches, ${i.visualTokens} tokens`).join('; ')} (the processor's minimum and maximum, 256·784 and 1280·784 pixels). ` +
      'Prompts: the document template with one image pad per visual token.',
    `- Queries: ${r.queries.count} short product-search queries ("a photo of a red cat", "a dog with a cat on a red car", …; ` +
      `${r.queries.promptTokens[0]}–${r.queries.promptTokens[1]} tokens with the query instruction and template), spelled ` +
      'with words the random package\'s tokenizer holds whole, so that they have about the lengths Qwen2\'s real ' +
      'vocabulary gives.',
    '- matchd: `Matcher.open(package, { engine: { intraOpThreads } })`, then `matcher.embedImages([jpegFile])` and ' +
      '`matcher.embedTexts(queries, { cache: false })`: the product\'s whole path (decode, the two Pillow-exact resizes, ' +
      'patch packing, tokenising, the vision run, the decoder run).',
    '- onnxruntime-node: `InferenceSession.create` on the same `vision.onnx` and `decoder.onnx`, fed the tensors matchd\'s ' +
      'own preprocessing made (pixel_values, position_ids, the prompt ids, right-padded), read from files before timing: ' +
      'per image one vision run whose output goes to one decoder run, as matchd\'s family runs them; the queries as one ' +
      'decoder run. So the baseline does less work than matchd (no JPEG decoding, resizing or tokenising), which costs ' +
      'matchd a few ms per image (`bench/gme-preprocess.ts`) against seconds of inference.',
    '- Each engine ran in its own child process (matchd\'s addon and onnxruntime-node each bring a `libonnxruntime.so.1`; ' +
      'they cannot share a process), one after the other, never both at once. Peak RSS is the child process\'s ' +
      '`maxRSS` over loading and every run.',
  ].join('\n');
  return { table, markdown };
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      package: { type: 'string' },
      threads: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '2' },
      'text-rounds': { type: 'string', default: '3' },
      'image-rounds': { type: 'string', default: '2' },
      'large-rounds': { type: 'string', default: '1' },
      only: { type: 'string', default: IMPLS.join(',') },
      child: { type: 'string' },
      inputs: { type: 'string' },
    },
  });
  const only = values.only.split(',').map((s) => s.trim()) as Impl[];
  for (const i of only) if (!IMPLS.includes(i)) throw new Error(`--only: unknown engine '${i}' (${IMPLS.join(', ')})`);
  const o = {
    threads: intList('threads', values.threads, 1)[0]!,
    rounds: intList('rounds', values.rounds, 1)[0]!,
    textRounds: intList('text-rounds', values['text-rounds'], 1)[0]!,
    imageRounds: intList('image-rounds', values['image-rounds'], 1)[0]!,
    largeRounds: intList('large-rounds', values['large-rounds'], 0)[0]!,
    only,
  };
  if (values.child && !IMPLS.includes(values.child as Impl)) throw new Error(`--child: unknown engine '${values.child}'`);
  return { o, json: values.json, pkg: values.package, child: values.child as Impl | undefined, inputs: values.inputs };
}

/** Targets and rendering from the measured figures (also used to re-render a saved --json result). */
export function finish(partial: Omit<GmeBenchResult, 'table' | 'markdown'>, argv: string[]): GmeBenchResult {
  const targets = targetsOf(rowsOf(partial));
  const done = { ...partial, targets, allTargetsMet: targets.length > 0 && targets.every((t) => t.met) };
  return { ...done, ...render(done, argv) };
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<GmeBenchResult | null> {
  const { o, json, pkg, child, inputs } = parse(argv);
  if (child) {
    const text = JSON.stringify(await runChild(child, readInputs(inputs!), o));
    // Wait until it is flushed: runWhenMain exits right after, and a pipe write still queued would be cut off.
    await new Promise<void>((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
    return null;
  }
  const started = performance.now();
  const dir = pkg ? path.resolve(pkg) : ensureGmeBenchPackage();
  const info = describeGmePackage(dir);
  const index = await prepareInputs(dir);
  const inp: GmeInputs = readInputs(index);
  const self = fileURLToPath(import.meta.url);
  const load = [os.loadavg()[0]!];
  const perImpl = new Map<Impl, ChildResult[]>();
  try {
    for (let r = 0; r < o.rounds; r++) {
      // Odd rounds run the engines in the opposite order, so that neither always goes first (page cache, drift).
      for (const impl of r % 2 ? [...o.only].reverse() : o.only) {
        progress(`gme: round ${r + 1}/${o.rounds}, ${impl}`);
        const args = [...argv.filter((a) => a !== '--json'), '--child', impl, '--inputs', index];
        const res = await runJsonChild<ChildResult>(self, args);
        perImpl.set(impl, [...(perImpl.get(impl) ?? []), res]);
        load.push(os.loadavg()[0]!);
      }
    }
  } finally {
    fs.rmSync(path.dirname(index), { recursive: true, force: true });
  }
  const engines = o.only.map((impl) => merge(perImpl.get(impl)!));
  const lengths = inp.queryIds.map((q) => q.length);
  const partial = {
    scenario: 'gme' as const, date: new Date().toISOString(), machine: machineInfo(), package: info, options: o,
    images: inp.images.map(({ pixelValuesFile: _p, positionIdsFile: _q, ids: _i, ...rest }) => rest),
    queries: { count: inp.queries.length, promptTokens: [Math.min(...lengths), Math.max(...lengths)] as [number, number] },
    engines, parity: parityOf(engines.find((m) => m.impl === 'ours'), engines.find((m) => m.impl === 'onnxruntime-node')),
    load, wallSeconds: (performance.now() - started) / 1000, targets: [] as GmeBenchResult['targets'], allTargetsMet: false,
  };
  const result = finish(partial, argv);
  emitResult(result, json);
  return result;
}

runWhenMain(import.meta.url, 'gme', main);
