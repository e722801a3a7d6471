/** Scoring: cosine of L2-normalised embeddings → calibrated 0–1 score → verdict band. Pure functions. */
import type { Bands, ScoreMapping } from './model/manifest.ts';

export type { ScoreMapping } from './model/manifest.ts';

/** One text's verdict for one image. */
export interface TextScore {
  text: string;
  /** Raw cosine similarity, in [-1, 1]. */
  cosine: number;
  /** The cosine mapped to [0, 1] by the model's calibration (linear range, or SigLIP's sigmoid). */
  score: number;
  band: string;
  /** True when the text was longer than the model's limit and was cut to fit. */
  truncated: boolean;
}

/** Scale `v` in place to unit length; a zero vector stays zero (its cosine with anything is then 0). */
export function l2normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i]! /= norm;
  return v;
}

/** Dot product of two unit vectors (the cosine), clamped against rounding to [-1, 1]. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return Math.max(-1, Math.min(1, dot));
}

/** Map a cosine from the calibrated [lo, hi] range to [0, 1], clamped. */
export function normalizeScore(cos: number, [lo, hi]: readonly [number, number]): number {
  return Math.max(0, Math.min(1, (cos - lo) / (hi - lo)));
}

function isRange(m: ScoreMapping | readonly [number, number]): m is readonly [number, number] {
  return Array.isArray(m);
}

/** The logistic function, written so that neither tail overflows. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Map a cosine to [0, 1]: linear over the calibrated range (clamped), or sigmoid(logitScale · cos + logitBias). */
export function mapScore(cos: number, m: ScoreMapping): number {
  return m.mapping === 'sigmoid' ? sigmoid(m.logitScale * cos + m.logitBias) : normalizeScore(cos, m.range);
}

/** The first band (best first) whose threshold the value reaches; the last band catches the rest. */
export function bandOf(cos: number, score: number, bands: Bands): string {
  const value = bands.on === 'score' ? score : cos;
  for (const b of bands.list) if (b.min === undefined || value >= b.min) return b.name;
  return bands.list[bands.list.length - 1]!.name;
}

/**
 * Score one image embedding against text embeddings (all unit length). `mapping` is the model's (or a rule's)
 * score mapping; a bare [lo, hi] range means linear over it (a rule's `range` override).
 */
export function scoreTexts(
  image: Float32Array,
  texts: readonly { text: string; vector: Float32Array; truncated: boolean }[],
  mapping: ScoreMapping | readonly [number, number],
  bands: Bands,
): TextScore[] {
  const m: ScoreMapping = isRange(mapping) ? { mapping: 'linear', range: [mapping[0], mapping[1]] } : mapping;
  return texts.map((t) => {
    const cos = cosine(image, t.vector);
    const score = mapScore(cos, m);
    return { text: t.text, cosine: cos, score, band: bandOf(cos, score, bands), truncated: t.truncated };
  });
}
