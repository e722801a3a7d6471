/**
 * The matcher: "how well does this image match each of these texts", for any model package. It opens the package
 * with its family's runtime and scores through the shared pipeline (decode ahead, batches, the text cache).
 * Usable as a library: it knows nothing of daemons, plugins or HTTP.
 */
import { decodesBesideEngine } from './cpus.ts';
import type { EngineOptions } from './engine.ts';
import { isMatchdError, type MatchdError } from './errors.ts';
import { limitsFrom, type DecodeLimits, type ImageInput } from './image/spec.ts';
import { openFamily } from './model/families/index.ts';
import type { Bands, Manifest } from './model/manifest.ts';
import { readPackage, type ModelPackage } from './model/package.ts';
import { Pipeline, type ImageEmbedding, type PipelineOptions, type TextEmbedding } from './pipeline.ts';
import { scoreTexts, type ScoreMapping, type TextScore } from './scoring.ts';

export type { TextScore } from './scoring.ts';
export type { ImageInput } from './image/spec.ts';
export { checkTexts, type ImageEmbedding, type TextEmbedding } from './pipeline.ts';

export interface MatcherOptions extends Omit<PipelineOptions, 'onBatch'> {
  engine?: EngineOptions;
  limits?: Partial<DecodeLimits>;
  /** Override the manifest's score mapping with a linear one over this cosine range, and the bands (from configuration). */
  range?: [number, number];
  bands?: Bands;
  onBatch?: PipelineOptions['onBatch'];
}

export type PairResult = { ok: true; results: TextScore[] } | { ok: false; error: MatchdError };

export class Matcher {
  /** How cosines become scores: the manifest's mapping, or linear over `options.range`. */
  readonly scoreMapping: ScoreMapping;
  readonly bands: Bands;

  private constructor(readonly pkg: ModelPackage, readonly pipeline: Pipeline, options: MatcherOptions) {
    this.scoreMapping = options.range ? { mapping: 'linear', range: options.range } : pkg.manifest.score;
    this.bands = options.bands ?? pkg.manifest.bands;
  }

  /** Open a model package folder; MATCHD_MODEL_INVALID lists every mismatch between manifest and models. */
  static async open(modelDir: string, options: MatcherOptions = {}): Promise<Matcher> {
    const limits = limitsFrom(options.limits);
    const pkg = readPackage(modelDir);
    const model = await openFamily(pkg, { engine: options.engine, limits });
    // Decodes beside a running batch only on the cores the engine leaves free (pipeline.ts says why).
    const beside = decodesBesideEngine(model.provider, options.engine?.intraOpThreads ?? 0);
    return new Matcher(pkg, new Pipeline(model, { ...options, decodeWhileEncoding: options.decodeWhileEncoding ?? beside }), options);
  }

  get manifest(): Manifest {
    return this.pkg.manifest;
  }

  /** The execution provider really in use ('cpu' or 'cuda'). */
  get provider(): string {
    return this.pipeline.model.provider;
  }

  get textCacheStats(): { size: number; hits: number; misses: number } {
    return this.pipeline.textCacheStats;
  }

  /** Embed texts as queries (with the model's query instruction), unit length, cached. */
  embedTexts(texts: readonly string[], options?: { cache?: boolean }): Promise<TextEmbedding[]> {
    return this.pipeline.embedTexts(texts, options);
  }

  /** Embed images through the batcher. One bad image never fails the others: its entry carries the error. */
  embedImages(inputs: readonly ImageInput[]): Promise<ImageEmbedding[]> {
    return this.pipeline.embedImages(inputs);
  }

  /** Score one image against texts: for each text { text, cosine, score, band, truncated }. Throws the image's error. */
  async score(image: ImageInput, texts: readonly string[]): Promise<TextScore[]> {
    const [embedded, textEmbeddings] = await Promise.all([this.pipeline.embedImage(image), this.embedTexts(texts)]);
    if (!embedded.ok) throw embedded.error;
    return scoreTexts(embedded.vector, textEmbeddings, this.scoreMapping, this.bands);
  }

  /** Score embeddings already computed (for callers that batch images themselves). */
  scoreVector(vector: Float32Array, texts: readonly TextEmbedding[]): TextScore[] {
    return scoreTexts(vector, texts, this.scoreMapping, this.bands);
  }

  /** Bulk scoring: every pair's images and texts batched through the engine; each pair's result or error, in order. */
  scoreMany(pairs: readonly { image: ImageInput; texts: readonly string[] }[]): Promise<PairResult[]> {
    return Promise.all(
      pairs.map(async (p): Promise<PairResult> => {
        const texts = this.embedTexts(p.texts).then(
          (list) => ({ ok: true as const, list }),
          (err: unknown) => {
            if (!isMatchdError(err)) throw err;
            return { ok: false as const, error: err };
          },
        );
        const [t, img] = await Promise.all([texts, this.pipeline.embedImage(p.image)]);
        if (!t.ok) return { ok: false, error: t.error };
        if (!img.ok) return { ok: false, error: img.error };
        return { ok: true, results: scoreTexts(img.vector, t.list, this.scoreMapping, this.bands) };
      }),
    );
  }

  /** Release the model (waits for nothing: callers stop submitting first). */
  close(): void {
    this.pipeline.close();
  }
}
