/**
 * @bench-scenario compute
 *
 * Compute bound: matchd's engine (`InferenceSession.run`) on prepared tensors of the benchmark model
 * (bench/models/clip-b32-random, a CLIP ViT-B/32-shaped dual encoder with random weights, built on first use by
 * bench/build-model.ts): image batch 1 / 8 / 32 and text batch 1 / 32, per intra-op thread setting.
 * No decoding, no tokenising, no scoring: the ceiling that the end-to-end scenario is compared with.
 *
 *   node --import tsx bench/compute.ts [--json] [--threads 2,1] [--image-batches 1,8,32] [--text-batches 1,32]
 *        [--rounds 3] [--seconds 2]
 *
 * Each cell: one warm-up run, then `--rounds` rounds of as many runs as fit in `--seconds` (at least 2).
 * Thread-pool spinning is off (matchd's default).
 */
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type BuildInfo, buildInfo, ensureBenchModel } from './build-model.ts';
import {
  type ScenarioResult, type Stats, describeMachine, emitResult, intList, runWhenMain, machineInfo, markdownTable, ms, progress, stats, textTable,
} from './lib.ts';

export interface Cell {
  tower: 'image' | 'text';
  threads: number;
  batch: number;
  /** Wall time of one awaited run, ms. */
  run: Stats;
  /** Items per second from the median run. */
  throughput: number;
  /** Items per second of each round (from the round's median run). */
  roundThroughput: number[];
}

export interface ComputeResult extends ScenarioResult {
  scenario: 'compute';
  model: BuildInfo;
  onnxruntime: string;
  options: { threads: number[]; imageBatches: number[]; textBatches: number[]; rounds: number; seconds: number };
  cells: Cell[];
}

type Session = Awaited<ReturnType<typeof import('../src/core/engine.ts')['InferenceSession']['open']>>;

/** Deterministic pixel values in roughly the range a normalised image has. */
export function pixelBatch(batch: number, seed = 1): Float32Array {
  const a = new Float32Array(batch * 3 * 224 * 224);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = (s / 2 ** 32) * 4 - 2;
  }
  return a;
}

/** Token ids as the tokenizer makes them: BOS, a few words, EOT, zero padding to 77; mask 1 over the tokens. */
export function tokenBatch(batch: number): { ids: BigInt64Array; mask: BigInt64Array } {
  const ids = new BigInt64Array(batch * 77);
  const mask = new BigInt64Array(batch * 77);
  for (let b = 0; b < batch; b++) {
    const words = 4 + (b % 8);
    ids[b * 77] = 49406n;
    for (let j = 1; j <= words; j++) ids[b * 77 + j] = BigInt(2 + ((b * 31 + j * 7) % 40000));
    ids[b * 77 + words + 1] = 49407n;
    for (let j = 0; j <= words + 1; j++) mask[b * 77 + j] = 1n;
  }
  return { ids, mask };
}

/** Time `run` for `rounds` rounds of as many runs as fit in `seconds` (≥ 2), after one warm-up run. */
export async function timeCell(run: () => Promise<unknown>, rounds: number, seconds: number): Promise<{ all: number[]; rounds: number[][] }> {
  const t0 = performance.now();
  await run();
  const est = performance.now() - t0;
  const n = Math.max(2, Math.round((seconds * 1000) / Math.max(est, 1)));
  const out: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      await run();
      xs.push(performance.now() - a);
    }
    out.push(xs);
  }
  return { all: out.flat(), rounds: out };
}

export function cellOf(tower: 'image' | 'text', threads: number, batch: number, t: { all: number[]; rounds: number[][] }): Cell {
  const run = stats(t.all);
  return {
    tower, threads, batch, run,
    throughput: (batch * 1000) / run.median,
    roundThroughput: t.rounds.map((r) => (batch * 1000) / stats(r).median),
  };
}

export function imageRunner(s: Session, batch: number): () => Promise<unknown> {
  const data = pixelBatch(batch);
  const out = new Float32Array(batch * 512);
  const feeds = { pixel_values: { type: 'float32' as const, dims: [batch, 3, 224, 224], data } };
  const fetch = { image_embeds: { type: 'float32' as const, dims: [batch, 512], data: out } };
  return () => s.run(feeds, fetch);
}

export function textRunner(s: Session, batch: number): () => Promise<unknown> {
  const { ids, mask } = tokenBatch(batch);
  const dims = [batch, 77];
  const feeds = { input_ids: { type: 'int64' as const, dims, data: ids }, attention_mask: { type: 'int64' as const, dims, data: mask } };
  const fetch = { text_embeds: { type: 'float32' as const, dims: [batch, 512], data: new Float32Array(batch * 512) } };
  return () => s.run(feeds, fetch);
}

const thr = (t: number) => (t === 0 ? 'default' : String(t));
const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;

function rows(cells: Cell[]): string[][] {
  return cells.map((c) => [
    c.tower, thr(c.threads), String(c.batch), String(c.run.n), ms(c.run.min), ms(c.run.median), ms(c.run.max),
    ms(c.run.median / c.batch), c.throughput.toFixed(1), range(c.roundThroughput),
  ]);
}
const HEADER = ['tower', 'threads', 'batch', 'runs', 'min', 'median', 'max', 'ms/item (median)', 'items/s (median)', 'items/s per round'];

export async function main(argv: string[] = process.argv.slice(2)): Promise<ComputeResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      threads: { type: 'string', default: '2,1' },
      'image-batches': { type: 'string', default: '1,8,32' },
      'text-batches': { type: 'string', default: '1,32' },
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '2' },
    },
  });
  const o = {
    threads: intList('threads', values.threads, 0),
    imageBatches: intList('image-batches', values['image-batches'], 1),
    textBatches: intList('text-batches', values['text-batches'], 1),
    rounds: intList('rounds', values.rounds, 1)[0]!,
    seconds: Number(values.seconds),
  };
  const dir = ensureBenchModel('clip-b32-random');
  const { InferenceSession } = await import('../src/core/engine.ts');
  const { addon } = await import('../src/core/native.ts');
  const cells: Cell[] = [];
  for (const threads of o.threads) {
    const opts = { intraOpThreads: threads }; // everything else at matchd's defaults (spinning off)
    const image = await InferenceSession.open(path.join(dir, 'image.onnx'), opts);
    const text = await InferenceSession.open(path.join(dir, 'text.onnx'), opts);
    for (const b of o.imageBatches) {
      progress(`compute: image batch ${b}, ${thr(threads)} threads`);
      cells.push(cellOf('image', threads, b, await timeCell(imageRunner(image, b), o.rounds, o.seconds)));
    }
    for (const b of o.textBatches) {
      progress(`compute: text batch ${b}, ${thr(threads)} threads`);
      cells.push(cellOf('text', threads, b, await timeCell(textRunner(text, b), o.rounds, o.seconds)));
    }
    image.dispose();
    text.dispose();
  }
  const model = buildInfo('clip-b32-random');
  const machine = machineInfo();
  const ort = addon().versions().onnxruntime;
  const modelLine =
    `clip-b32-random (random weights, seed ${model.seed}): vision ${(model.visionParams / 1e6).toFixed(1)} M parameters, ` +
    `${model.visionGFLOP.toFixed(1)} GFLOP/image; text ${(model.textParams / 1e6).toFixed(1)} M parameters, 77 tokens`;
  const table = [
    `compute: engine run on prepared tensors, ONNX Runtime ${ort} (matchd addon), spinning off`,
    `model: ${modelLine}`,
    `machine: ${describeMachine(machine)}`,
    `times in ms per run; ${o.rounds} rounds × as many runs as fit in ${o.seconds} s (≥ 2), after 1 warm-up run`,
    '',
    textTable(HEADER, rows(cells)),
  ].join('\n');
  const args = argv.filter((a) => a !== '--json').join(' ');
  const markdown = [
    '## Compute bound: engine `run` on prepared tensors (`bench/compute.ts`)',
    '',
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Machine: ${describeMachine(machine)}`,
    `- Model: ${modelLine}. Built by \`bench/model/build-clip.py\` (torch ${model.torch}, ONNX opset ${model.opset}); ` +
      'scores are meaningless, only speed is measured.',
    `- Engine: matchd's \`InferenceSession\`, ONNX Runtime ${ort}, sequential execution, graph optimisation \`all\`, ` +
      'thread-pool spinning off (the default); outputs preallocated.',
    '- Reproduce:',
    '',
    '  ```sh',
    `  node --import tsx bench/compute.ts${args ? ` ${args}` : ''}`,
    '  ```',
    '',
    `Wall time of one awaited \`run()\`, ms: ${o.rounds} rounds × as many runs as fit in ${o.seconds} s (at least 2) ` +
      'per cell, after one warm-up run. Images: random pixel values, [batch, 3, 224, 224] float32. Texts: ' +
      '[batch, 77] int64 ids (BOS, 4–11 words, EOT, zero padding) with their attention mask. No targets of its own: ' +
      'it is the ceiling for the end-to-end scenario.',
    '',
    markdownTable(HEADER, rows(cells)),
  ].join('\n');
  const result: ComputeResult = {
    scenario: 'compute', date: new Date().toISOString(), machine, model, onnxruntime: ort, options: o, cells,
    table, markdown, allTargetsMet: true,
  };
  emitResult(result, values.json);
  return result;
}

runWhenMain(import.meta.url, 'compute', main);
