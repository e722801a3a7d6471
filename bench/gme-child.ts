/**
 * One engine's side of the GME benchmark, run in its own child process by bench/gme.ts (matchd's addon and
 * onnxruntime-node each bring a `libonnxruntime.so.1`; they cannot share a process). Not a scenario itself.
 *
 * Both engines go through the same sequence, timed the same way:
 *   load (both graphs, in parallel) → one warm-up batch of the queries → the batch of queries × textRounds → one
 *   query × textRounds → a warm-up 256-token image → the 256-token image × imageRounds → the 1280-token image ×
 *   largeRounds (the first run at that size in the process, for both engines alike: a warm-up would cost as much
 *   as the run).
 *   - matchd: `Matcher.open(package)`, then `matcher.embedImages([jpegFile])` and
 *     `matcher.embedTexts(queries, { cache: false })`: the product's whole path (decode, both Pillow-exact resizes,
 *     patch packing, prompt tokenising, vision run, decoder run), not only the engine.
 *   - onnxruntime-node: `InferenceSession.create` on the same vision.onnx and decoder.onnx with matchd's session
 *     settings, fed the tensors the coordinator prepared with matchd's preprocessing (read from files before timing):
 *     per image one vision run, its output passed to one decoder run, as the family runs them.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { importBaseline, progress } from './lib.ts';
import { type GmeInputs, type InputImage, padRows, readFloat32, readInt64 } from './gme-inputs.ts';

export type Impl = 'ours' | 'onnxruntime-node';
export const IMPLS: Impl[] = ['ours', 'onnxruntime-node'];

export interface ChildOptions {
  threads: number;
  textRounds: number;
  imageRounds: number;
  largeRounds: number;
}

/**
 * Each timed run: wall-clock ms, the process's CPU time in ms (user + system, every thread: what the run cost the
 * machine, much less sensitive than wall time to other processes competing for the cores), and the 1-minute load
 * average when it started.
 */
export interface Timed {
  ms: number[];
  cpuMs: number[];
  load: number[];
  /** The baseline's vision / decoder split of each image run (ms), for information. */
  split?: { vision: number; decoder: number }[];
}

export interface ChildResult {
  impl: Impl;
  version: string;
  loadMs: number;
  rssAfterLoadMiB: number;
  peakRssMiB: number;
  warmup: { textsMs: number; image256Ms: number };
  texts: Timed;
  oneText: Timed;
  image256: Timed;
  image1280: Timed;
  /** The last embedding of each input (queries in order, then the 256- and 1280-token images): for the parity check. */
  embeddings: { queries: number[][]; image256: number[]; image1280: number[] | null };
}

interface GmeEngine {
  version: string;
  embedImage(img: InputImage): Promise<{ vector: Float32Array; split?: { vision: number; decoder: number } }>;
  embedTexts(which: number[]): Promise<Float32Array[]>;
  close(): void | Promise<void>;
}

async function openOurs(inp: GmeInputs, o: ChildOptions): Promise<GmeEngine> {
  const { Matcher } = await import('../src/core/matcher.ts');
  const { addon } = await import('../src/core/native.ts');
  const m = await Matcher.open(inp.package, { engine: { intraOpThreads: o.threads } });
  return {
    version: `matchd addon, ONNX Runtime ${addon().versions().onnxruntime}`,
    async embedImage(img) {
      const [e] = await m.embedImages([img.file]);
      if (!e!.ok) throw e!.error;
      return { vector: e!.vector };
    },
    async embedTexts(which) {
      return (await m.embedTexts(which.map((i) => inp.queries[i]!), { cache: false })).map((t) => t.vector);
    },
    close: () => m.close(),
  };
}

interface OrtTensor { readonly data: unknown; readonly dims: readonly number[] }
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  InferenceSession: { create(path: string, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
}

async function openOrt(inp: GmeInputs, o: ChildOptions): Promise<GmeEngine> {
  const { module: ort, version } = await importBaseline<OrtModule>('onnxruntime-node');
  // matchd's session settings (src/core/engine.ts defaults), spelled the onnxruntime-node way.
  const options = {
    intraOpNumThreads: o.threads,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  const [vision, decoder] = await Promise.all([
    ort.InferenceSession.create(path.join(inp.package, 'vision.onnx'), options),
    ort.InferenceSession.create(path.join(inp.package, 'decoder.onnx'), options),
  ]);
  const { io, hidden } = inp;
  const tensors = new Map(inp.images.map((img) => [img.label, {
    pixels: new ort.Tensor('float32', readFloat32(img.pixelValuesFile), [1, img.patches, 1176]),
    positions: new ort.Tensor('int64', readInt64(img.positionIdsFile), [img.patches, 2]),
  }]));
  const decode = async (rows: number[][], embeds: OrtTensor) => {
    const { ids, mask, dims } = padRows(rows, inp.padId);
    const out = await decoder.run({
      [io.decoder.inputIds]: new ort.Tensor('int64', ids, dims),
      [io.decoder.attentionMask]: new ort.Tensor('int64', mask, dims),
      [io.decoder.imageEmbeds]: embeds,
    });
    const data = out[io.decoder.output]!.data as Float32Array;
    return rows.map((_, r) => data.slice(r * hidden, (r + 1) * hidden));
  };
  const noImages = new ort.Tensor('float32', new Float32Array(0), [0, hidden]);
  return {
    version: `onnxruntime-node ${version}`,
    async embedImage(img) {
      const t = tensors.get(img.label)!;
      const t0 = performance.now();
      const v = await vision.run({ [io.pixelValues]: t.pixels, [io.positionIds]: t.positions });
      const t1 = performance.now();
      const embeds = v[io.output]!;
      const [vector] = await decode([img.ids], new ort.Tensor('float32', embeds.data, [img.visualTokens, hidden]));
      return { vector: vector!, split: { vision: t1 - t0, decoder: performance.now() - t1 } };
    },
    embedTexts: (which) => decode(which.map((i) => inp.queryIds[i]!), noImages),
    async close() {
      await vision.release();
      await decoder.release();
    },
  };
}

const MiB = 2 ** 20;

/** Run the whole sequence on one engine; progress on stderr. */
export async function runChild(impl: Impl, inp: GmeInputs, o: ChildOptions): Promise<ChildResult> {
  const say = (msg: string) => progress(`gme: ${impl}: ${msg}`);
  const t0 = performance.now();
  const engine = impl === 'ours' ? await openOurs(inp, o) : await openOrt(inp, o);
  const loadMs = performance.now() - t0;
  const rssAfterLoadMiB = process.memoryUsage().rss / MiB;
  say(`loaded in ${(loadMs / 1000).toFixed(1)} s, RSS ${rssAfterLoadMiB.toFixed(0)} MiB`);
  const all = inp.queries.map((_, i) => i);
  const image = (label: string) => inp.images.find((i) => i.label === label)!;
  const timeOne = async <T>(fn: () => Promise<T>): Promise<{ ms: number; cpuMs: number; value: T }> => {
    const c = process.cpuUsage();
    const t = performance.now();
    const value = await fn();
    const ms = performance.now() - t;
    const d = process.cpuUsage(c);
    return { ms, cpuMs: (d.user + d.system) / 1000, value };
  };
  const repeat = async <T>(n: number, what: string, fn: () => Promise<T>, split?: (v: T) => { vision: number; decoder: number } | undefined) => {
    const timed: Timed = { ms: [], cpuMs: [], load: [] };
    let last: T | undefined;
    for (let i = 0; i < n; i++) {
      timed.load.push(os.loadavg()[0]!);
      const r = await timeOne(fn);
      timed.ms.push(r.ms);
      timed.cpuMs.push(r.cpuMs);
      const s = split?.(r.value);
      if (s) (timed.split ??= []).push(s);
      last = r.value;
      say(`${what} ${i + 1}/${n}: ${(r.ms / 1000).toFixed(2)} s, CPU ${(r.cpuMs / 1000).toFixed(2)} s (load ${timed.load.at(-1)!.toFixed(2)})`);
    }
    return { timed, last };
  };
  const warmTexts = await timeOne(() => engine.embedTexts(all));
  say(`warm-up, ${all.length} queries: ${(warmTexts.ms / 1000).toFixed(2)} s`);
  const texts = await repeat(o.textRounds, `${all.length} queries`, () => engine.embedTexts(all));
  const oneText = await repeat(o.textRounds, 'one query', () => engine.embedTexts([0]));
  const warmImage = await timeOne(() => engine.embedImage(image('256')));
  say(`warm-up, 256-token image: ${(warmImage.ms / 1000).toFixed(2)} s`);
  const img256 = await repeat(o.imageRounds, '256-token image', () => engine.embedImage(image('256')), (v) => v.split);
  const img1280 = await repeat(o.largeRounds, '1280-token image', () => engine.embedImage(image('1280')), (v) => v.split);
  const result: ChildResult = {
    impl,
    version: engine.version,
    loadMs,
    rssAfterLoadMiB,
    peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MiB,
    warmup: { textsMs: warmTexts.ms, image256Ms: warmImage.ms },
    texts: texts.timed,
    oneText: oneText.timed,
    image256: img256.timed,
    image1280: img1280.timed,
    embeddings: {
      queries: texts.last!.map((v) => Array.from(v)),
      image256: Array.from(img256.last!.vector),
      image1280: img1280.last ? Array.from(img1280.last.vector) : null,
    },
  };
  await engine.close();
  return result;
}
