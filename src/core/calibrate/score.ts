/**
 * Scoring labelled examples for calibration through the library (the Matcher's pipeline): every distinct image once,
 * in rounds that fill the engine's batches, every distinct text once (batched, cached); then each example's value is
 * the rule's decision over its texts (best: the highest cosine; all: the lowest), as a cosine and as the 0–1 score.
 */
import type { Matcher, TextEmbedding } from '../matcher.ts';
import { cosine, mapScore, type ScoreMapping } from '../scoring.ts';

export interface Example {
  image: string;
  /** The texts the image is scored against (one for a pair; the rule's decision over all of them otherwise). */
  texts: string[];
  match: boolean;
  /** The label as written. */
  label: string;
  /** Where it came from, for messages: `labels.csv line 12`, `job 40`, `dir/match/a.jpg`. */
  where: string;
}

export interface Problem {
  where: string;
  message: string;
  code?: string;
}

export interface Scored extends Example {
  cosine: number;
  score: number;
}

export interface ScoreOptions {
  match: 'best' | 'all';
  mapping: ScoreMapping;
  /** Images per round (several engine batches' worth, so decoding runs ahead). */
  round?: number;
  progress?(done: number, total: number, failed: number): void;
}

export async function scoreExamples(matcher: Matcher, examples: readonly Example[], o: ScoreOptions): Promise<{ scored: Scored[]; problems: Problem[] }> {
  const texts = [...new Set(examples.flatMap((e) => e.texts))];
  const vectors = new Map<string, TextEmbedding>();
  const embedded = await matcher.embedTexts(texts);
  texts.forEach((t, i) => vectors.set(t, embedded[i]!));
  const images = [...new Set(examples.map((e) => e.image))];
  const imageVectors = new Map<string, Float32Array | { code: string; message: string }>();
  const round = o.round ?? 64;
  let failed = 0;
  for (let s = 0; s < images.length; s += round) {
    const chunk = images.slice(s, s + round);
    const out = await matcher.embedImages(chunk);
    chunk.forEach((img, i) => {
      const r = out[i]!;
      if (r.ok) imageVectors.set(img, r.vector);
      else {
        failed++;
        imageVectors.set(img, { code: r.error.code, message: r.error.message });
      }
    });
    o.progress?.(Math.min(s + round, images.length), images.length, failed);
  }
  const scored: Scored[] = [];
  const problems: Problem[] = [];
  for (const e of examples) {
    const v = imageVectors.get(e.image);
    if (!v || !(v instanceof Float32Array)) {
      const err = v as { code: string; message: string } | undefined;
      problems.push({ where: e.where, code: err?.code ?? 'MATCHD_INTERNAL', message: err?.message ?? 'not scored' });
      continue;
    }
    const cosines = e.texts.map((t) => cosine(v, vectors.get(t)!.vector));
    const c = o.match === 'all' ? Math.min(...cosines) : Math.max(...cosines);
    scored.push({ ...e, cosine: c, score: mapScore(c, o.mapping) });
  }
  return { scored, problems };
}
