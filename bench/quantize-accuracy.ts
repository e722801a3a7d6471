/**
 * Accuracy and GME parts of bench/quantize.ts (not a scenario itself): float32 vs int8 packages through `Matcher`.
 */
import sharp from 'sharp';
import { ensureJpegs, progress } from './lib.ts';

export interface Accuracy {
  images: number;
  texts: number;
  /** (image, text pair) order tests, float32 ties excluded. */
  pairs: number;
  embeddingCosMin: number;
  maxDelta: number;
  meanDelta: number;
  pairAgreement: number;
  top1: number;
  fp32Range: [number, number];
  medianGap: number;
}

/** The synthetic vocabulary's real words (bench/model/build-clip.py), combined into 40 texts. */
const WORDS = ['dog', 'cat', 'car', 'bus', 'bird', 'horse', 'red', 'blue', 'green', 'street', 'beach', 'flower', 'food', 'table', 'night', 'sunset', 'people', 'child', 'boat', 'train'];
export const TEXTS = Array.from({ length: 40 }, (_, i) =>
  `a photo of a ${WORDS[i % 20]} ${WORDS[(i * 7 + 3) % 20]}${i >= 20 ? ` on a ${WORDS[(i * 3 + 1) % 20]}` : ''}`);

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

async function embeddings(dir: string, files: string[]): Promise<{ images: Float32Array[]; texts: Float32Array[] }> {
  const { Matcher } = await import('../src/core/matcher.ts');
  const m = await Matcher.open(dir, { maxBatch: 8, engine: { graphCache: false } });
  try {
    const images = (await m.embedImages(files)).map((e) => {
      if (!e.ok) throw e.error;
      return e.vector;
    });
    return { images, texts: (await m.embedTexts(TEXTS, { cache: false })).map((t) => t.vector) };
  } finally {
    m.close();
  }
}

/** How far int8 moves the image–text cosines of `f32Dir`'s model, and whether per-image text order survives. */
export async function accuracyOf(f32Dir: string, int8Dir: string): Promise<Accuracy> {
  const files = await ensureJpegs(64, 1024, 768);
  const f = await embeddings(f32Dir, files);
  const q = await embeddings(int8Dir, files);
  let embeddingCosMin = 1;
  for (const [i, v] of f.images.entries()) embeddingCosMin = Math.min(embeddingCosMin, dot(v, q.images[i]!));
  for (const [i, v] of f.texts.entries()) embeddingCosMin = Math.min(embeddingCosMin, dot(v, q.texts[i]!));
  let maxDelta = 0;
  let sumDelta = 0;
  let agree = 0;
  let pairs = 0;
  let top1 = 0;
  let lo = Infinity;
  let hi = -Infinity;
  const gaps: number[] = [];
  for (const [i, img] of f.images.entries()) {
    const cf = f.texts.map((t) => dot(img, t));
    const cq = q.texts.map((t) => dot(q.images[i]!, t));
    cf.forEach((c, j) => {
      const d = Math.abs(c - cq[j]!);
      maxDelta = Math.max(maxDelta, d);
      sumDelta += d;
      lo = Math.min(lo, c);
      hi = Math.max(hi, c);
    });
    for (let a = 0; a < cf.length; a++) {
      for (let b = a + 1; b < cf.length; b++) {
        const df = cf[a]! - cf[b]!;
        if (df === 0) continue;
        pairs++;
        gaps.push(Math.abs(df));
        if (Math.sign(df) === Math.sign(cq[a]! - cq[b]!)) agree++;
      }
    }
    if (cf.indexOf(Math.max(...cf)) === cq.indexOf(Math.max(...cq))) top1++;
  }
  gaps.sort((x, y) => x - y);
  return {
    images: files.length, texts: TEXTS.length, pairs, embeddingCosMin, maxDelta, meanDelta: sumDelta / (files.length * TEXTS.length),
    pairAgreement: agree / pairs, top1, fp32Range: [lo, hi], medianGap: gaps[gaps.length >> 1] ?? NaN,
  };
}

export interface GmeResult {
  label: string;
  threads: number;
  visualTokens: number;
  note: string;
  rows: { name: string; loadS: number; imageS: number; textS: number; imageCos: number | null; textCosMin: number | null; maxDelta: number | null }[];
}

const QUERIES = ['a red car on a street', 'a dog on a beach', 'a bowl of soup', 'two people walking at sunset'];

/** One image and four queries through a GME package pair, one package at a time (each is gigabytes). */
export async function gmePair(f32Dir: string, int8Dir: string, threads: number): Promise<GmeResult> {
  const { Matcher } = await import('../src/core/matcher.ts');
  // 448×448 is exactly the processor's minimum pixel count: 256 visual tokens, the cheapest real image.
  const jpeg = await sharp({ create: { width: 448, height: 448, channels: 3, background: { r: 180, g: 120, b: 60 } } })
    .composite([{ input: { create: { width: 200, height: 160, channels: 3, background: { r: 30, g: 60, b: 200 } } }, left: 100, top: 120 }])
    .jpeg().toBuffer();
  const out: { name: string; loadS: number; imageS: number; textS: number; image: Float32Array; texts: Float32Array[] }[] = [];
  let visualTokens = 0;
  for (const [name, dir] of [['float32', f32Dir], ['int8', int8Dir]] as const) {
    progress(`quantize: GME ${name} (${dir})`);
    let t0 = performance.now();
    const m = await Matcher.open(dir, { engine: { intraOpThreads: threads, graphCache: false } });
    const loadS = (performance.now() - t0) / 1000;
    await m.embedTexts(['warm-up'], { cache: false });
    t0 = performance.now();
    const img = await m.pipeline.embedImage(jpeg);
    const imageS = (performance.now() - t0) / 1000;
    if (!img.ok) throw img.error;
    t0 = performance.now();
    const texts = (await m.embedTexts(QUERIES, { cache: false })).map((t) => t.vector);
    const textS = (performance.now() - t0) / 1000;
    visualTokens = (await m.pipeline.model.prepareImage(jpeg)).cost;
    m.close();
    out.push({ name, loadS, imageS, textS, image: img.vector, texts });
  }
  const [f, q] = out as [typeof out[0], typeof out[0]];
  let maxDelta = 0;
  for (const [j, t] of f.texts.entries()) maxDelta = Math.max(maxDelta, Math.abs(dot(f.image, t) - dot(q.image, q.texts[j]!)));
  return {
    label: `${f32Dir} vs ${int8Dir}`, threads, visualTokens,
    note: 'One run each (a GME image costs seconds): times are indicative, the cosines exact. Load: Matcher.open, both graphs, without the graph cache (bench/load.ts measures that).',
    rows: [
      { name: 'float32', loadS: f.loadS, imageS: f.imageS, textS: f.textS, imageCos: null, textCosMin: null, maxDelta: null },
      { name: 'int8', loadS: q.loadS, imageS: q.imageS, textS: q.textS, imageCos: dot(f.image, q.image), textCosMin: Math.min(...f.texts.map((t, j) => dot(t, q.texts[j]!))), maxDelta },
    ],
  };
}
