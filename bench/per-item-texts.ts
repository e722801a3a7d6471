/**
 * @bench-scenario per-item-texts
 *
 * Each job with texts of its own, through the daemon: `--jobs` jobs (default 1,000) handed to a real `Daemon` by a
 * source plugin's `ctx.submit` (journalled, leased, decoded, batched, encoded, scored, recorded — no actions), each a
 * 640×480 JPEG file, with the benchmark model (bench/models/clip-b32-random unless --model):
 *
 *   rule texts   every job scored against its rule's 3 texts, embedded once at start-up (cached): image work only
 *   own texts    every job with 3 texts of its own, all distinct (3 × jobs text encodes, no cache hits), embedded
 *                through the pipeline's text batcher concurrently with the job's image
 *
 * then, in the same process, the engine alone on prepared tensors: image.onnx at the mean image batch size the
 * daemon formed in the own-texts run, text.onnx at its mean text batch size (77 tokens, as the model pads). The
 * target: the own-texts cost per job is close to one image encode + 3 text encodes at those batch sizes (the ratio
 * is printed); the rest is decoding (sharp, on the same cores), the journal (SQLite, synchronous=FULL) and scoring.
 *
 *   node --import tsx bench/per-item-texts.ts [--json] [--jobs 1000] [--texts 3] [--threads 0] [--batch 16]
 *        [--model clip-b32-random|clip-tiny-random] [--rounds 1] [--seconds 2]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { z } from 'zod';
import { type BenchModel, type BuildInfo, benchModelDir, buildInfo, ensureBenchModel } from './build-model.ts';
import { cellOf, imageRunner, textRunner, timeCell } from './compute.ts';
import {
  type ScenarioResult, describeMachine, emitResult, ensureJpegs, intList, machineInfo, markdownTable, ms, progress, runWhenMain, textTable,
} from './lib.ts';

const RULE_TEXTS = ['a photo of a product', 'a red dress on a hanger', 'a pair of running shoes'];
const COLOURS = ['red', 'blue', 'green', 'black', 'white', 'yellow', 'purple', 'orange'];
const THINGS = ['dress', 'shirt', 'sneaker', 'handbag', 'jacket', 'lamp', 'chair', 'watch', 'mug', 'backpack'];

/** `n` distinct product-title-like texts for job `job` (distinct across jobs, so none is a cache hit). */
function ownTexts(job: number, n: number): string[] {
  return Array.from({ length: n }, (_, k) => {
    const i = job * n + k;
    return `item ${i}: a ${COLOURS[i % COLOURS.length]} ${THINGS[(i >> 3) % THINGS.length]}${k === 0 ? '' : k === 1 ? ' on a white background' : ', seen from the side'}`;
  });
}

interface Options {
  jobs: number;
  texts: number;
  threads: number;
  batch: number;
  model: BenchModel;
  rounds: number;
  seconds: number;
}

interface ModeRun {
  mode: 'rule texts' | 'own texts';
  round: number;
  jobs: number;
  seconds: number;
  msPerJob: number;
  imageBatch: number;
  textBatch: number;
  textBatches: number;
}

interface Engine {
  imageBatch: number;
  textBatch: number;
  /** Median ms per image / per text at those batch sizes. */
  imageMs: number;
  textMs: number;
}

export interface PerItemTextsResult extends ScenarioResult {
  scenario: 'per-item-texts';
  model: BuildInfo;
  options: Options;
  runs: ModeRun[];
  engine: Engine;
  targets: { what: string; value: number; target: string; met: boolean; line: string }[];
}

/** A source that hands its context to the benchmark, which submits straight into the core. */
function benchSource(onCtx: (ctx: import('../src/core/plugin.ts').PluginContext) => void): import('../src/core/plugin.ts').SourcePlugin {
  return {
    name: 'bench',
    configSchema: z.strictObject({}),
    create(ctx) {
      onCtx(ctx);
      return { async start() {}, async stop() {} };
    },
  };
}

const histogramMean = async (h: { get(): Promise<{ values: { metricName?: string; value: number }[] }> }) => {
  const v = (await h.get()).values;
  const sum = v.find((x) => x.metricName?.endsWith('_sum'))?.value ?? 0;
  const count = v.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0;
  return { mean: count ? sum / count : 0, count };
};

/** One daemon, `jobs` jobs with or without their own texts; wall time from the first submit to the last result. */
async function runMode(mode: ModeRun['mode'], round: number, o: Options, files: string[]): Promise<ModeRun> {
  const { parseConfig } = await import('../src/core/config.ts');
  const { Daemon } = await import('../src/core/daemon.ts');
  const { silentLogger } = await import('../src/core/log.ts');
  const { builtinRegistry } = await import('../src/plugins/index.ts');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-bench-items-'));
  const config = parseConfig(stringify({
    model: { dir: benchModelDir(o.model), intraOpThreads: o.threads, maxBatch: o.batch, queueSize: o.jobs + 100 },
    journal: { path: path.join(root, 'journal.db') },
    admin: { enabled: false },
    log: { level: 'silent' },
    rules: { products: { texts: RULE_TEXTS } },
    sources: [{ type: 'bench', name: 'bench', rule: 'products' }],
  }));
  let ctx: import('../src/core/plugin.ts').PluginContext | undefined;
  const registry = builtinRegistry().register(benchSource((c) => (ctx = c)));
  const daemon = await Daemon.start(config, { baseDir: root, registry, logger: silentLogger() });
  try {
    const submit = async (n: number, tag: string, texts: boolean) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = ctx!.submit({ dedupeKey: `${tag}-${i}`, image: { path: files[i % files.length]! }, ...(texts ? { texts: ownTexts(i, o.texts).map((t) => `${tag} ${t}`) } : {}) });
        if (!r.accepted) throw new Error(`submit refused: ${r.message}`);
        ids.push(r.jobId);
      }
      const views = await Promise.all(ids.map((id) => ctx!.waitForJob(id, 3_600_000)));
      const bad = views.filter((v) => v?.state !== 'done');
      if (bad.length) throw new Error(`${bad.length} jobs did not finish: ${JSON.stringify(bad[0]?.result ?? bad[0])}`);
    };
    await submit(o.batch * 2, 'warm-up', mode === 'own texts'); // model warm-up, out of the timed part
    const images0 = await histogramMean(daemon.metrics.batchSize);
    const texts0 = await histogramMean(daemon.metrics.textBatchSize);
    const t0 = performance.now();
    await submit(o.jobs, `r${round}`, mode === 'own texts');
    const seconds = (performance.now() - t0) / 1000;
    const images1 = await histogramMean(daemon.metrics.batchSize);
    const texts1 = await histogramMean(daemon.metrics.textBatchSize);
    // Means over the timed part only: (sum1 - sum0) / (count1 - count0).
    const mean = (a: { mean: number; count: number }, b: { mean: number; count: number }) =>
      b.count > a.count ? (b.mean * b.count - a.mean * a.count) / (b.count - a.count) : 0;
    return {
      mode, round, jobs: o.jobs, seconds, msPerJob: (seconds * 1000) / o.jobs,
      imageBatch: mean(images0, images1), textBatch: mean(texts0, texts1), textBatches: texts1.count - texts0.count,
    };
  } finally {
    await daemon.stop('benchmark done');
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The engine alone, at the batch sizes the daemon formed. */
async function engineCosts(o: Options, imageBatch: number, textBatch: number): Promise<Engine> {
  const { InferenceSession } = await import('../src/core/engine.ts');
  const dir = benchModelDir(o.model);
  const image = await InferenceSession.open(path.join(dir, 'image.onnx'), { intraOpThreads: o.threads });
  const text = await InferenceSession.open(path.join(dir, 'text.onnx'), { intraOpThreads: o.threads });
  try {
    progress(`per-item-texts: engine alone, image batch ${imageBatch}, text batch ${textBatch}`);
    const img = cellOf('image', o.threads, imageBatch, await timeCell(imageRunner(image, imageBatch), 3, o.seconds));
    const txt = cellOf('text', o.threads, textBatch, await timeCell(textRunner(text, textBatch), 3, o.seconds));
    return { imageBatch, textBatch, imageMs: img.run.median / imageBatch, textMs: txt.run.median / textBatch };
  } finally {
    image.dispose();
    text.dispose();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function targetsOf(runs: ModeRun[], e: Engine, o: Options): PerItemTextsResult['targets'] {
  const own = median(runs.filter((r) => r.mode === 'own texts').map((r) => r.msPerJob));
  const rule = median(runs.filter((r) => r.mode === 'rule texts').map((r) => r.msPerJob));
  const expected = e.imageMs + o.texts * e.textMs;
  const ratio = own / expected;
  const extra = own - rule;
  return [
    {
      what: `own texts, ms per job / (image encode + ${o.texts} text encodes)`, value: ratio, target: '≤ 1.25×', met: ratio <= 1.25,
      line: `own texts: ${ms(own)} ms per job = ${ratio.toFixed(2)}× (image encode ${ms(e.imageMs)} ms at batch ${e.imageBatch} + ${o.texts} × text encode ${ms(e.textMs)} ms at batch ${e.textBatch} = ${ms(expected)} ms) (target ≤ 1.25×): ${ratio <= 1.25 ? 'met' : 'NOT met'}`,
    },
    {
      what: `own texts - rule texts, ms per job / ${o.texts} text encodes`, value: extra / (o.texts * e.textMs), target: 'information', met: true,
      line: `own - rule texts: ${ms(extra)} ms per job = ${(extra / (o.texts * e.textMs)).toFixed(2)}× ${o.texts} text encodes (${ms(o.texts * e.textMs)} ms); rule texts alone: ${ms(rule)} ms per job = ${(rule / e.imageMs).toFixed(2)}× one image encode`,
    },
  ];
}

function render(r: Omit<PerItemTextsResult, 'table' | 'markdown'>, argv: string[]): { table: string; markdown: string } {
  const header = ['mode', 'round', 'jobs', 'seconds', 'ms/job', 'jobs/s', 'mean image batch', 'mean text batch', 'text batches'];
  const rows = r.runs.map((x) => [
    x.mode, String(x.round), String(x.jobs), x.seconds.toFixed(1), ms(x.msPerJob), (1000 / x.msPerJob).toFixed(1),
    x.imageBatch.toFixed(1), x.mode === 'own texts' ? x.textBatch.toFixed(1) : '–', String(x.textBatches),
  ]);
  const eHeader = ['engine alone', 'batch', 'ms per item (median)'];
  const eRows = [['image.onnx', String(r.engine.imageBatch), ms(r.engine.imageMs)], ['text.onnx (77 tokens)', String(r.engine.textBatch), ms(r.engine.textMs)]];
  const modelLine = `${r.options.model} (random weights, seed ${r.model.seed}; vision ${(r.model.visionParams / 1e6).toFixed(1)} M, text ${(r.model.textParams / 1e6).toFixed(1)} M parameters)`;
  const table = [
    `per-item-texts: ${r.options.jobs} jobs through the daemon, ${r.options.texts} texts each; model ${modelLine}`,
    `machine: ${describeMachine(r.machine)}`,
    '',
    textTable(header, rows),
    '',
    textTable(eHeader, eRows),
    '',
    ...r.targets.map((t) => t.line),
  ].join('\n');
  const args = argv.filter((a) => a !== '--json').join(' ');
  const markdown = [
    '## Per-item texts through the daemon (`bench/per-item-texts.ts`)',
    '',
    `- Date: ${r.date.slice(0, 10)}`,
    `- Machine: ${describeMachine(r.machine)}`,
    `- Model: ${modelLine}, built by \`bench/model/build-clip.py\`; only speed is measured.`,
    `- ${r.options.jobs} jobs submitted through a source's \`ctx.submit\` into a real daemon (journal on local disk, ` +
      `synchronous=FULL; no actions), cycling through 64 distinct 640×480 JPEG files; model.maxBatch ${r.options.batch}, ` +
      `intraOpThreads ${r.options.threads} (0 = one per core), everything else default (text batches up to 64). ` +
      `"rule texts": each job scored against the rule's ${RULE_TEXTS.length} texts, embedded at start-up. "own texts": each job ` +
      `with ${r.options.texts} texts of its own, all distinct, so ${r.options.texts * r.options.jobs} text encodes and no cache hits. ` +
      'Time: first submit to the last result journalled, after a warm-up of 2 × maxBatch jobs.',
    '- Engine alone: `InferenceSession.run` on prepared tensors at the mean batch sizes of the own-texts run (rounded), median of 3 rounds.',
    '- Reproduce (the model and images are built on first use):',
    '',
    '  ```sh',
    '  apt-get install -y python3-torch python3-onnx   # once, to build the model (bench/build-model.ts)',
    `  node --import tsx bench/per-item-texts.ts${args ? ` ${args}` : ''}`,
    '  ```',
    '',
    '### Targets',
    '',
    ...r.targets.map((t) => `- ${t.target === 'information' ? 'ℹ️' : t.met ? '✅' : '❌'} ${t.line}`),
    '',
    '### Runs',
    '',
    markdownTable(header, rows),
    '',
    markdownTable(eHeader, eRows),
    '',
    `- Load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(2)} (a shared machine: other work on its cores shows in the numbers).`,
  ].join('\n');
  return { table, markdown };
}

function parse(argv: string[]): { o: Options; json: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      jobs: { type: 'string', default: '1000' },
      texts: { type: 'string', default: '3' },
      threads: { type: 'string', default: '0' },
      batch: { type: 'string', default: '16' },
      model: { type: 'string', default: 'clip-b32-random' },
      rounds: { type: 'string', default: '1' },
      seconds: { type: 'string', default: '2' },
    },
  });
  if (values.model !== 'clip-b32-random' && values.model !== 'clip-tiny-random') throw new Error(`--model: clip-b32-random or clip-tiny-random, got '${values.model}'`);
  return {
    json: values.json,
    o: {
      jobs: intList('jobs', values.jobs, 1)[0]!,
      texts: intList('texts', values.texts, 1)[0]!,
      threads: intList('threads', values.threads, 0)[0]!,
      batch: intList('batch', values.batch, 1)[0]!,
      model: values.model,
      rounds: intList('rounds', values.rounds, 1)[0]!,
      seconds: Number(values.seconds),
    },
  };
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<PerItemTextsResult> {
  const { o, json } = parse(argv);
  ensureBenchModel(o.model);
  const files = await ensureJpegs(64, 640, 480);
  const runs: ModeRun[] = [];
  // Rounds alternate the modes, so that a busy stretch of a shared machine falls on both.
  for (let round = 1; round <= o.rounds; round++) {
    for (const mode of ['rule texts', 'own texts'] as const) {
      progress(`per-item-texts: round ${round}/${o.rounds}, ${mode}, ${o.jobs} jobs`);
      const r = await runMode(mode, round, o, files);
      progress(`  ${r.seconds.toFixed(1)} s, ${ms(r.msPerJob)} ms per job, image batches ${r.imageBatch.toFixed(1)}, text batches ${r.textBatch.toFixed(1)}`);
      runs.push(r);
    }
  }
  const own = runs.filter((r) => r.mode === 'own texts');
  const engine = await engineCosts(o, Math.max(1, Math.round(median(own.map((r) => r.imageBatch)))), Math.max(1, Math.round(median(own.map((r) => r.textBatch)))));
  const partial = {
    scenario: 'per-item-texts' as const, date: new Date().toISOString(), machine: machineInfo(), model: buildInfo(o.model), options: o, runs, engine,
    targets: targetsOf(runs, engine, o), allTargetsMet: false,
  };
  partial.allTargetsMet = partial.targets.every((t) => t.met);
  const result: PerItemTextsResult = { ...partial, ...render(partial, argv) };
  emitResult(result, json);
  return result;
}

runWhenMain(import.meta.url, 'per-item-texts', main);
