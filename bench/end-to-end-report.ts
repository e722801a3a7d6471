/**
 * bench/end-to-end.ts's results: the types its children report, merging rounds, the targets and the tables.
 * Not a scenario itself.
 */
import path from 'node:path';
import type { BuildInfo } from './build-model.ts';
import type { Cell } from './compute.ts';
import { type ScenarioResult, type Stats, benchDir, describeMachine, markdownTable, ms, stats, textTable } from './lib.ts';

export const TEXTS = ['a photo of a dog', 'a red car on a street', 'a bowl of food on a table', 'people standing on a beach', 'a close up picture of a flower'];

export type Impl = 'ours' | 'ours-overlap' | 'ours-int8' | 'naive' | 'transformers-js';
export const IMPLS: Impl[] = ['ours', 'ours-overlap', 'ours-int8', 'naive', 'transformers-js'];
export const IMPL_LABEL: Record<Impl, string> = {
  ours: 'matchd', 'ours-overlap': 'matchd, decoding beside every run (info: the previous default)', 'ours-int8': 'matchd, int8 package (info)',
  naive: 'naive onnxruntime-node + sharp', 'transformers-js': 'transformers.js',
};
/** The int8 package of the benchmark model (`matchd model quantize`, made by bench/quantize.ts or here on first use). */
export const INT8_DIR = path.join(benchDir, 'models', 'clip-b32-random-int8');

export interface ModeResult {
  mode: string;
  batch: number;
  images: number;
  /** Images per second of each round. */
  roundThroughput: number[];
  throughput: Stats;
  /** Per-image latency, submit → verdict, ms. */
  latency: Stats;
  /** Event-loop delay: the worst round's p99 and max (one child process per round), ms. */
  loop: { p50: number; p99: number; max: number; mean: number };
  /** Batches the batcher formed (ours, batcher mode). */
  batchSizes?: Stats;
  /** Raw samples, for merging rounds that ran in separate child processes. */
  raw?: { lat: number[]; sizes?: number[] };
  /** Share of the machine other processes used during each round (bench/lib.ts othersProbe). */
  others: number[];
}

export interface ChildResult {
  impl: Impl;
  version: string;
  threads: number;
  modes: ModeResult[];
  compute?: (Cell & { times?: number[] })[];
  /** Why this baseline could not run, when it could not. */
  error?: string;
}

export interface EndToEndResult extends ScenarioResult {
  scenario: 'end-to-end';
  model: BuildInfo;
  options: Options;
  children: ChildResult[];
  /** os.loadavg() before the first round and after each round: other work on the machine. */
  load: number[][];
  /** Rounds run again because other processes used more than `clean` of the machine during them. */
  redone: number;
  clean: number;
  targets: { what: string; value: number; target: string; met: boolean; line: string }[];
}

export interface Options {
  threads: number[];
  rounds: number;
  seqImages: number;
  batchedImages: number;
  batch: number;
  submitters: number;
  only: Impl[];
  seconds: number;
  /** A round during which other processes used more than this share of the machine is run again (up to `retries`). */
  clean: number;
  retries: number;
}


/** One pipeline's rounds (each from its own child process) as one result. */
export function mergeRounds(rs: ChildResult[]): ChildResult {
  const failed = rs.find((r) => r.error);
  if (failed) return failed;
  const first = rs[0]!;
  const modes = first.modes.map((m, i) => {
    const all = rs.map((r) => r.modes[i]!);
    const roundThroughput = all.flatMap((x) => x.roundThroughput);
    const sizes = all.flatMap((x) => x.raw?.sizes ?? []);
    return {
      mode: m.mode, batch: m.batch, images: m.images, roundThroughput, throughput: stats(roundThroughput),
      latency: stats(all.flatMap((x) => x.raw?.lat ?? [])),
      loop: {
        p50: Math.max(...all.map((x) => x.loop.p50)), p99: Math.max(...all.map((x) => x.loop.p99)),
        max: Math.max(...all.map((x) => x.loop.max)), mean: Math.max(...all.map((x) => x.loop.mean)),
      },
      ...(m.batchSizes ? { batchSizes: stats(sizes) } : {}),
      others: all.flatMap((x) => x.others ?? []),
    };
  });
  const compute = first.compute?.map((c, i) => {
    const all = rs.map((r) => r.compute![i]!);
    const times = all.flatMap((x) => x.times ?? []);
    const run = stats(times);
    return { ...c, run, throughput: (c.batch * 1000) / run.median, roundThroughput: all.flatMap((x) => x.roundThroughput) };
  });
  return { ...first, modes, ...(compute ? { compute } : {}) };
}

const tput = (m: ModeResult | undefined) => m?.throughput.median ?? NaN;
const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const rangeOf = (xs: number[]) => (xs.length ? `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}` : '–');

export function targetsOf(children: ChildResult[], o: Options, spinningDefault: boolean) {
  const out: EndToEndResult['targets'] = [];
  const add = (what: string, value: number, target: string, met: boolean, extra = '') =>
    out.push({ what, value, target, met, line: `${what} = ${Number.isFinite(value) ? value.toFixed(2) : 'not measured'} (target ${target}): ${met ? 'met' : 'NOT met'}${extra}` });
  for (const t of o.threads) {
    const ours = children.find((c) => c.impl === 'ours' && c.threads === t);
    const naive = children.find((c) => c.impl === 'naive' && c.threads === t);
    const tjs = children.find((c) => c.impl === 'transformers-js' && c.threads === t);
    if (ours && !ours.error) {
      const seq = ours.modes[0]!;
      const bat = ours.modes[1]!;
      const c1 = ours.compute!.find((c) => c.batch === 1)!.throughput;
      const cb = ours.compute!.find((c) => c.batch === o.batch)!.throughput;
      const r1 = tput(seq) / c1;
      const rb = tput(bat) / cb;
      add(`end to end / compute bound, batch 1, ${t} threads`, r1, '≥ 0.90×', r1 >= 0.9, ` (${fmt(tput(seq))} vs ${fmt(c1)} images/s)`);
      add(`end to end (batcher) / compute bound, batch ${o.batch}, ${t} threads`, rb, '≥ 0.90×', rb >= 0.9, ` (${fmt(tput(bat))} vs ${fmt(cb)} images/s)`);
      if (naive && !naive.error) {
        // Never slower than what a user would write by hand, in every cell (issue 21).
        const n1 = tput(seq) / tput(naive.modes[0]);
        add(`matchd / naive onnxruntime-node pipeline, batch 1, ${t} threads`, n1, '≥ 1.0×', n1 >= 1.0, ` (${fmt(tput(seq))} vs ${fmt(tput(naive.modes[0]))} images/s)`);
        const nb = tput(bat) / tput(naive.modes[1]);
        add(`matchd / naive onnxruntime-node pipeline, batch ${o.batch}, ${t} threads`, nb, '≥ 1.0×', nb >= 1.0, ` (${fmt(tput(bat))} vs ${fmt(tput(naive.modes[1]))} images/s)`);
        const r = nb;
        add(`matchd / naive onnxruntime-node pipeline, batch ${o.batch}, ${t} threads (earlier issue's margin)`, r, '≥ 1.3×', r >= 1.3, ` (${fmt(tput(bat))} vs ${fmt(tput(naive.modes[1]))} images/s)`);
      }
      if (tjs && !tjs.error) {
        const r = tput(seq) / tput(tjs.modes[0]);
        add(`matchd / transformers.js, batch 1, ${t} threads`, r, '≥ 1.6×', r >= 1.6, ` (${fmt(tput(seq))} vs ${fmt(tput(tjs.modes[0]))} images/s)`);
      } else if (o.only.includes('transformers-js')) {
        add(`matchd / transformers.js, batch 1, ${t} threads`, NaN, '≥ 1.6×', false, ` — transformers.js did not run: ${tjs?.error ?? 'no result'}`);
      }
      add(`event-loop delay p99 while saturated (batcher), ${t} threads, ms`, bat.loop.p99, '< 20 ms', bat.loop.p99 < 20, ` (max ${ms(bat.loop.max)} ms)`);
    }
  }
  out.push({
    what: 'ORT thread spinning off by default', value: spinningDefault ? 1 : 0, target: 'off', met: !spinningDefault,
    line: `ORT thread-pool spinning by default: ${spinningDefault ? 'on' : 'off'} (engine option allowSpinning, default false; threads set per run with intraOpThreads: ${o.threads.join(', ')}) (target: off, threads configurable): ${spinningDefault ? 'NOT met' : 'met'}`,
  });
  return out;
}

export function render(r: Omit<EndToEndResult, 'table' | 'markdown'>, argv: string[]): { table: string; markdown: string } {
  const header = ['pipeline', 'threads', 'mode', 'images/round', 'rounds', 'images/s min', 'median', 'max', 'latency ms median', 'p-max', 'loop p99 ms', 'loop max ms', 'others\' CPU share, worst round'];
  const share = (xs: number[] | undefined) => (xs && xs.length ? `${Math.round(Math.max(...xs) * 100)} %` : '–');
  const rows: string[][] = [];
  for (const c of r.children) {
    if (c.error) {
      rows.push([IMPL_LABEL[c.impl], String(c.threads), `did not run: ${c.error.split('\n')[0]!.slice(0, 160)}`, '', '', '', '', '', '', '', '', '', '']);
      continue;
    }
    for (const cc of c.compute ?? []) {
      rows.push([IMPL_LABEL[c.impl], String(c.threads), `compute bound, engine run, batch ${cc.batch}`, String(cc.run.n * cc.batch / r.options.rounds | 0), String(r.options.rounds),
        fmt(Math.min(...cc.roundThroughput)), fmt(cc.throughput), fmt(Math.max(...cc.roundThroughput)), ms(cc.run.median), ms(cc.run.max), '–', '–', '–']);
    }
    for (const m of c.modes) {
      rows.push([IMPL_LABEL[c.impl], String(c.threads), m.mode + (m.batchSizes ? ` (batches: median ${m.batchSizes.median}, min ${m.batchSizes.min})` : ''),
        String(m.images), String(m.throughput.n), fmt(m.throughput.min), fmt(m.throughput.median), fmt(m.throughput.max),
        ms(m.latency.median), ms(m.latency.max), ms(m.loop.p99), ms(m.loop.max), share(m.others)]);
    }
  }
  const modelLine = `clip-b32-random (CLIP ViT-B/32-shaped, random weights, seed ${r.model.seed}; vision ${(r.model.visionParams / 1e6).toFixed(1)} M parameters, ${r.model.visionGFLOP.toFixed(1)} GFLOP/image)`;
  const versions = r.children.filter((c) => !c.error).map((c) => `${IMPL_LABEL[c.impl]}: ${c.version}`).filter((v, i, a) => a.indexOf(v) === i);
  const tlines = r.targets.map((t) => t.line);
  const table = [
    `end-to-end: 1024×768 JPEG files → verdicts (1 image × ${TEXTS.length} cached texts); model ${modelLine}`,
    `machine: ${describeMachine(r.machine)}`,
    ...versions,
    '',
    textTable(header, rows),
    '',
    ...tlines,
  ].join('\n');
  const args = argv.filter((a) => a !== '--json').join(' ');
  const md = [
    '## End to end: JPEG files → verdicts, vs naive onnxruntime-node and transformers.js (`bench/end-to-end.ts`)',
    '',
    `- Date: ${r.date.slice(0, 10)}`,
    `- Machine: ${describeMachine(r.machine)}`,
    `- Model: ${modelLine}, built by \`bench/model/build-clip.py\`; scores are meaningless, only speed is measured.`,
    `- Versions: ${versions.join('; ')}`,
    `- Images: ${r.options.batchedImages > 0 ? 64 : 0} distinct generated 1024×768 JPEG files (quality 85, colour fields with noise), cycled; ` +
      `each image is scored against ${TEXTS.length} texts whose embeddings were computed once before timing (cached).`,
    `- Settings, the same for every pipeline: ORT intra-op threads as in each row, thread-pool spinning off, fp32. ` +
      `matchd: \`Matcher.open(dir, { engine: { intraOpThreads }, maxBatch: ${r.options.batch}, maxDelayMs: 20, batchesInFlight: 1, decodeConcurrency: 2 })\` ` +
      '(the daemon\'s defaults), the decode budget beside a running batch left at its default (the cores ORT leaves free: 0 with 2 threads, 1 with 1).',
    '- Reproduce (models and images are built on first use):',
    '',
    '  ```sh',
    '  apt-get install -y python3-torch python3-onnx   # once, to build the model (bench/build-model.ts)',
    '  npm run bench:setup                             # once: onnxruntime-node, sharp, @huggingface/transformers',
    `  node --import tsx bench/end-to-end.ts${args ? ` ${args}` : ''}`,
    '  ```',
    '',
    '### Targets (ratios of median throughputs from this one run)',
    '',
    ...r.targets.map((t) => `- ${t.met ? '✅' : '❌'} ${t.line}`),
    '',
    '### Throughput, latency and event-loop delay',
    '',
    `images/s: min, median and max over ${r.options.rounds} rounds (compute-bound rows: per-round throughput of engine runs on prepared ` +
      'tensors, latency columns = ms per run). Latency: submit → verdict per image, ms (for the naive and transformers.js batch rows, ' +
      'the batch\'s time). Loop: `monitorEventLoopDelay` (1 ms resolution) across all rounds of the row.',
    '',
    markdownTable(header, rows),
    '',
    '### Notes',
    '',
    '- "batcher": 16 async loops, each `await matcher.pipeline.embedImage(path)` then `matcher.scoreVector(vector, ' +
      'cachedTexts)`, through src/core/pipeline.ts as the daemon uses it: each image decoded as it is handed in (at most ' +
      '`decodeConcurrency` at once while no batch runs, `decodeWhileEncoding` while one does), batched (maxBatch ' +
      `${r.options.batch}, maxDelayMs 20), one batch in flight. Engine runs go to the addon's own engine threads, never ` +
      'behind decodes in libuv\'s pool.',
    '- One batch in flight (model.batchesInFlight default 1): ORT already uses every core; a second concurrent run ' +
      'only oversubscribes a 2-core machine (measured: 0.72× vs 0.82× of compute-bound with 2 in flight vs 1).',
    '- Naive batch 8 is already mostly inference on this machine (its time per batch is close to the compute-bound ' +
      'run), so hiding decoding behind inference can gain at most the decode share here; a 1.3× margin over it needs ' +
      'the engine itself to be faster, or more cores than the 2 the decode and inference share.',
    '- "one embedImages call" (information, no target): all the round\'s paths in one `matcher.embedImages` call, which ' +
      'decodes window w + 1 while window w runs, with one inference at a time.',
    '- naive: `sharp(file).resize(224, 224, { fit: \'cover\' }).removeAlpha().raw().toBuffer()`, a JS loop into a CHW ' +
      '`Float32Array` with CLIP mean/std, `InferenceSession.run`, cosine and band in JS; batch 8 = 8 decodes with ' +
      '`Promise.all`, then one run — no overlap between decoding and inference.',
    '- transformers.js: `env.allowRemoteModels = false`, `env.localModelPath = bench/models/`, model id `clip-b32-random/hf` ' +
      '(config.json, preprocessor_config.json, tokenizer files and hard links `onnx/vision_model.onnx`, `onnx/text_model.onnx` ' +
      'written by build-clip.py); `RawImage.read` → `AutoProcessor` (CLIPImageProcessor: shortest edge 224, centre crop, ' +
      'rescale, normalise) → `CLIPVisionModelWithProjection`, `dtype: \'fp32\'`, `device: \'cpu\'`.' +
      (r.children.some((c) => c.impl === 'transformers-js' && !c.error) ? ' It ran offline here.' : ' It did NOT run here: see its row.'),
    '- Each pipeline ran in its own child process, one after another, never two at once (matchd\'s addon and ' +
      'onnxruntime-node each bring a `libonnxruntime.so.1` with the same soname; they cannot share a process). Rounds are ' +
      'interleaved: round 1 of every pipeline, then round 2, …, each round a fresh child (model loaded, warmed up, then ' +
      'timed), so that a busy stretch of the machine is shared out. Loop p99/max are the worst round\'s.',
    `- Load average (1 min) before the first round and after each: ${r.load.map((l) => l[0]!.toFixed(2)).join(', ')}. ` +
      'This machine is shared (other engineers\' test runs used its 2 cores at times during the run), so absolute ' +
      'numbers carry that noise; the min–max columns show how much. "others\' CPU share": the share of both cores that ' +
      'other processes used during a timed round (/proc/stat minus this process); a round over ' +
      `${Math.round(r.clean * 100)} % was run again, up to ${r.options.retries} times (${r.redone} round(s) were).`,
  ].join('\n');
  return { table, markdown: md };
}

