/**
 * The batcher mode of bench/end-to-end.ts under several pipeline settings, alternated in one process on one loaded
 * model (issue 21), with a "decode 8, then run 8" loop through matchd's own decode and engine as the reference that
 * has no batcher (what the naive pipeline does, with matchd's decode). Per setting: images/s, batch sizes, the share
 * of the wall time an engine run was in progress, and CPU ms per image (this process).
 *
 * A script, not a scenario of bench/run-all.ts: it exists to explain the end-to-end figures (BENCHMARKS.md).
 *
 *   node --import tsx bench/pipeline-knobs.ts [--threads 2] [--rounds 3] [--images 64] [--only default,decodeWhileEncoding,engine]
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { benchModelDir, ensureBenchModel } from './build-model.ts';
import { ensureJpegs, othersProbe } from './lib.ts';
import { TEXTS } from './end-to-end-report.ts';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' }, images: { type: 'string', default: '64' }, only: { type: 'string' } } });
const threads = Number(values.threads);
const images = Number(values.images);
const { Matcher } = await import('../src/core/matcher.ts');
const { Pipeline } = await import('../src/core/pipeline.ts');
ensureBenchModel('clip-b32-random');
const files = await ensureJpegs(64, 1024, 768);
const sizes: number[] = [];
let busyMs = 0;
const onBatch = (kind: string, size: number, ms: number) => {
  if (kind !== 'image') return;
  sizes.push(size);
  busyMs += ms;
};
const matcher = await Matcher.open(benchModelDir('clip-b32-random'), { engine: { intraOpThreads: threads }, maxBatch: 8, maxDelayMs: 20, batchesInFlight: 1, decodeConcurrency: 2 });
const textEmbs = await matcher.embedTexts(TEXTS);
const model = matcher.pipeline.model;
const base = { maxBatch: 8, batchesInFlight: 1, onBatch };
const settings: Record<string, ConstructorParameters<typeof Pipeline>[1]> = {
  [`default (maxDelayMs 20, decodeConcurrency 2, decodeWhileEncoding ${matcher.pipeline.decodeWhileEncoding})`]: { ...base, maxDelayMs: 20, decodeConcurrency: 2, decodeWhileEncoding: matcher.pipeline.decodeWhileEncoding },
  'maxDelayMs 100': { ...base, maxDelayMs: 100, decodeConcurrency: 2, decodeWhileEncoding: matcher.pipeline.decodeWhileEncoding },
  'decodeWhileEncoding 1': { ...base, maxDelayMs: 20, decodeConcurrency: 2, decodeWhileEncoding: 1 },
  'decodeWhileEncoding 2 (overlap)': { ...base, maxDelayMs: 20, decodeConcurrency: 2, decodeWhileEncoding: 2 },
};
let next = 0;
const pick = () => files[next++ % files.length]!;
async function batcherRound(p: InstanceType<typeof Pipeline>, count: number) {
  let left = count;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (left > 0) {
      left--;
      const e = await p.embedImage(pick());
      if (!e.ok) throw e.error;
      matcher.scoreVector(e.vector, textEmbs);
    }
  }));
}
async function decodeThenRun(count: number) {
  for (let i = 0; i < count; i += 8) {
    const prepared = await Promise.all(Array.from({ length: Math.min(8, count - i) }, () => model.prepareImage(pick())));
    const t0 = performance.now();
    const out = await model.encodeImages(prepared);
    onBatch('image', prepared.length, performance.now() - t0);
    for (const v of out) matcher.scoreVector(v, textEmbs);
  }
}
const runs: Record<string, () => Promise<void>> = {};
for (const [name, opts] of Object.entries(settings)) {
  const p = new Pipeline(model, opts);
  runs[`batcher, ${name}`] = () => batcherRound(p, images);
}
runs['decode 8 (Promise.all), then run 8: no batcher'] = () => decodeThenRun(images);
// The two parts alone: decoding only (matchd's prepareImage, 8 at once as above; the naive pipeline's sharp call and
// JS normalise loop, 8 at once) and the engine only (encodeImages on 8 images decoded beforehand).
const { default: sharp } = await import('sharp');
const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];
runs['decode only: matchd prepareImage, 8 at once'] = async () => {
  for (let i = 0; i < images; i += 8) await Promise.all(Array.from({ length: 8 }, () => model.prepareImage(pick())));
};
runs['decode only: naive sharp cover + JS CHW loop, 8 at once'] = async () => {
  for (let i = 0; i < images; i += 8) {
    const pxs = await Promise.all(Array.from({ length: 8 }, () => sharp(pick()).resize(224, 224, { fit: 'cover' }).removeAlpha().raw().toBuffer()));
    const data = new Float32Array(8 * 3 * 224 * 224);
    pxs.forEach((px, k) => {
      for (let j = 0; j < 224 * 224; j++) for (let c = 0; c < 3; c++) data[k * 3 * 224 * 224 + c * 224 * 224 + j] = (px[j * 3 + c]! / 255 - MEAN[c]!) / STD[c]!;
    });
  }
};
const ready = await Promise.all(Array.from({ length: 8 }, () => model.prepareImage(pick())));
runs['engine only: encodeImages(8 decoded images)'] = async () => {
  for (let i = 0; i < images; i += 8) {
    const t0 = performance.now();
    await model.encodeImages(ready);
    onBatch('image', 8, performance.now() - t0);
  }
};
// --only a,b: keep the rows whose name contains one of these strings
if (values.only) for (const name of Object.keys(runs)) if (!values.only.split(',').some((w) => name.includes(w))) delete runs[name];
const rows: Record<string, { tput: number[]; size: number[]; busy: number[]; cpu: number[]; others: number[] }> = {};
for (const run of Object.values(runs)) await run(); // warm-up, every setting
console.error(`load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (let r = 0; r < Number(values.rounds); r++) {
  for (const [name, run] of Object.entries(runs)) {
    sizes.length = 0;
    busyMs = 0;
    const probe = othersProbe();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const row = (rows[name] ??= { tput: [], size: [], busy: [], cpu: [], others: [] });
    row.tput.push((images * 1000) / wall);
    row.size.push(sizes.reduce((a, b) => a + b, 0) / sizes.length);
    row.busy.push(busyMs / wall);
    row.cpu.push((c.user + c.system) / 1000 / images);
    row.others.push(probe() ?? 0);
  }
}
console.error(`load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`| setting (${threads} threads, maxBatch 8, 16 submitters) | images/s median (per round) | mean batch | engine busy share | CPU ms/image | others' share, worst |`);
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, r] of Object.entries(rows)) {
  console.log(`| ${name} | ${med(r.tput).toFixed(1)} (${r.tput.map((x) => x.toFixed(1)).join(', ')}) | ${med(r.size).toFixed(1)} | ${med(r.busy).toFixed(2)} | ${med(r.cpu).toFixed(0)} | ${(Math.max(...r.others) * 100).toFixed(0)} % |`);
}
matcher.close();
