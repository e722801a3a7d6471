/**
 * The matcher: "how well does this image match each of these texts", for any model package.
 * Images are decoded by sharp (bounded concurrency), packed natively into one batch tensor and encoded in
 * batches; text embeddings are cached (LRU by model + query) since rules reuse the same texts for every image.
 * Usable as a library: it knows nothing of daemons, plugins or HTTP.
 */
import os from 'node:os';
import { InferenceSession, type EngineOptions } from './engine.ts';
import { MatchdError, isMatchdError } from './errors.ts';
import { loadImage, type DecodeLimits, type ImageInput } from './image.ts';
import { Limiter } from './limit.ts';
import { Lru } from './lru.ts';
import type { Bands, Manifest } from './model/manifest.ts';
import { checkAgainstModels, invalidPackage, readPackage, type ModelPackage } from './model/package.ts';
import { TextTokenizer, buildQuery } from './model/tokenizer.ts';
import { addon, type RawImage, type Tensor } from './native.ts';
import { l2normalize, scoreTexts, type TextScore } from './scoring.ts';

export type { TextScore } from './scoring.ts';
export type { ImageInput } from './image.ts';

export interface MatcherOptions {
  engine?: EngineOptions;
  /** Most images per engine run (default 16). */
  maxBatch?: number;
  /** Most texts per engine run (default 64). */
  maxTextBatch?: number;
  /** Images decoded at once (default: the number of CPUs). */
  decodeConcurrency?: number;
  /** Cached text embeddings (default 10 000; 0 disables the cache). */
  textCacheSize?: number;
  limits?: Partial<DecodeLimits>;
  /** Override the manifest's calibration range and bands (from configuration). */
  range?: [number, number];
  bands?: Bands;
}

export interface TextEmbedding {
  text: string;
  vector: Float32Array;
  truncated: boolean;
}

/** What the decoder saw: the container format and the original size. */
export interface ImageSource {
  format: string;
  width: number;
  height: number;
}

type Decoded = { ok: true; raw: RawImage; source: ImageSource } | { ok: false; error: MatchdError };
export type DecodedImage = Decoded;

export type ImageEmbedding =
  | { ok: true; vector: Float32Array; source: ImageSource }
  | { ok: false; error: MatchdError };

export type PairResult = { ok: true; results: TextScore[] } | { ok: false; error: MatchdError };

function asMatchdError(err: unknown): MatchdError {
  return err instanceof MatchdError ? err : new MatchdError('MATCHD_INTERNAL', (err as Error)?.message ?? String(err));
}

/** Validate texts once: every problem listed in one MATCHD_TEXT_INVALID. */
export function checkTexts(texts: readonly string[]): void {
  if (!Array.isArray(texts) || texts.length === 0) throw new MatchdError('MATCHD_TEXT_INVALID', 'at least one text is required');
  const problems: string[] = [];
  texts.forEach((t, i) => {
    if (typeof t !== 'string') problems.push(`text ${i}: expected a string but received ${typeof t}`);
    else if (t.trim() === '') problems.push(`text ${i}: empty text`);
    else if (!t.isWellFormed()) problems.push(`text ${i}: not well-formed Unicode (lone surrogate), i.e. not encodable as UTF-8`);
  });
  if (problems.length) throw new MatchdError('MATCHD_TEXT_INVALID', `invalid text:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { problems });
}

export class Matcher {
  private readonly textCache: Lru<string, TextEmbedding>;
  private readonly decodes: Limiter;
  private readonly maxBatch: number;
  private readonly maxTextBatch: number;
  readonly range: [number, number];
  readonly bands: Bands;

  private constructor(
    readonly pkg: ModelPackage,
    private readonly image: InferenceSession,
    private readonly text: InferenceSession,
    private readonly tokenizer: TextTokenizer,
    private readonly options: MatcherOptions,
  ) {
    this.textCache = new Lru(options.textCacheSize ?? 10_000);
    this.decodes = new Limiter(options.decodeConcurrency ?? os.availableParallelism());
    this.maxBatch = options.maxBatch ?? 16;
    this.maxTextBatch = options.maxTextBatch ?? 64;
    this.range = options.range ?? pkg.manifest.score.range;
    this.bands = options.bands ?? pkg.manifest.bands;
  }

  /** Open a model package folder; MATCHD_MODEL_INVALID lists every mismatch between manifest and models. */
  static async open(modelDir: string, options: MatcherOptions = {}): Promise<Matcher> {
    const pkg = readPackage(modelDir);
    const [image, text] = await Promise.all([
      InferenceSession.open(pkg.imageModel, options.engine),
      InferenceSession.open(pkg.textModel, options.engine),
    ]);
    try {
      const problems = checkAgainstModels(pkg.manifest, image, text);
      if (problems.length) throw invalidPackage(modelDir, problems);
      const tokenizer = TextTokenizer.load(pkg.tokenizer, pkg.manifest.text);
      return new Matcher(pkg, image, text, tokenizer, options);
    } catch (err) {
      image.dispose();
      text.dispose();
      throw err;
    }
  }

  get manifest(): Manifest {
    return this.pkg.manifest;
  }

  /** The execution provider really in use ('cpu' or 'cuda'). */
  get provider(): string {
    return this.image.provider ?? 'disposed';
  }

  get textCacheStats(): { size: number; hits: number; misses: number } {
    return { size: this.textCache.size, hits: this.textCache.hits, misses: this.textCache.misses };
  }

  /** Embed texts as queries (with the model's query instruction), unit length, cached. */
  async embedTexts(texts: readonly string[], { cache = true }: { cache?: boolean } = {}): Promise<TextEmbedding[]> {
    checkTexts(texts);
    const spec = this.manifest.text;
    const key = (t: string) => `${this.manifest.name}@${this.manifest.version}\u0000${t}`;
    const out: (TextEmbedding | undefined)[] = texts.map((t) => (cache ? this.textCache.get(key(t)) : undefined));
    const missing = [...new Set(texts.filter((_, i) => out[i] === undefined))];
    for (let start = 0; start < missing.length; start += this.maxTextBatch) {
      const chunk = missing.slice(start, start + this.maxTextBatch);
      const batch = await this.tokenizer.encode(chunk.map((t) => buildQuery(t, spec)));
      const feeds: Record<string, Tensor> = { [spec.inputIds]: { type: spec.dtype, dims: batch.dims, data: batch.ids } };
      if (spec.attentionMask) feeds[spec.attentionMask] = { type: spec.dtype, dims: batch.dims, data: batch.mask };
      const result = await this.text.run(feeds, [spec.output]);
      const vectors = this.rows(result[spec.output]!, chunk.length);
      chunk.forEach((t, i) => {
        const e = { text: t, vector: vectors[i]!, truncated: batch.truncated[i]! };
        if (cache) this.textCache.set(key(t), e);
        texts.forEach((orig, j) => {
          if (orig === t && out[j] === undefined) out[j] = e;
        });
      });
    }
    return out as TextEmbedding[];
  }

  /** Split a [n, D] output into unit-length rows (float16 outputs widened to float32). */
  private rows(t: Tensor, n: number): Float32Array[] {
    const data = t.type === 'float16' ? addon().float16ToFloat32(t.data as Uint16Array) : (t.data as Float32Array);
    const d = data.length / n;
    return Array.from({ length: n }, (_, i) => l2normalize(data.slice(i * d, (i + 1) * d)));
  }

  /**
   * Decode one image to the model's input size, within the decode concurrency limit; per-item errors come back as
   * values, never thrown. With `embedDecoded`, callers can decode ahead while a batch is inferring (the daemon does).
   */
  async decodeImage(input: ImageInput): Promise<DecodedImage> {
    return this.decode(input);
  }

  /** Encode images already decoded by `decodeImage` in one engine run: unit vectors, in order. */
  embedDecoded(raws: RawImage[]): Promise<Float32Array[]> {
    return this.encodeDecoded(raws);
  }

  private async decode(input: ImageInput): Promise<Decoded> {
    const spec = this.manifest.image;
    try {
      const img = await this.decodes.run(() =>
        loadImage(input, { width: spec.size.width, height: spec.size.height, resize: spec.resize, background: spec.background }, this.options.limits),
      );
      return { ok: true, raw: img, source: img.source };
    } catch (err) {
      return { ok: false, error: asMatchdError(err) };
    }
  }

  /** Pack decoded images into one tensor (native, one pass) and encode them in one engine run. */
  private async encodeDecoded(raws: RawImage[]): Promise<Float32Array[]> {
    const spec = this.manifest.image;
    const { width, height } = spec.size;
    const n = raws.length;
    const size = n * 3 * width * height;
    const batch = spec.dtype === 'float16' ? new Uint16Array(size) : new Float32Array(size);
    await addon().packImages(raws, batch, { width, height, mean: spec.mean, std: spec.std, scale: spec.scale, channelOrder: spec.channelOrder });
    const input = { type: spec.dtype, dims: [n, 3, height, width], data: batch } as Tensor;
    const result = await this.image.run({ [spec.input]: input }, [spec.output]);
    return this.rows(result[spec.output]!, n);
  }

  /**
   * Embed images in batches of maxBatch. One bad image never fails the others: its entry carries the error.
   * Decoding of the next batch overlaps inference of the current one.
   */
  async embedImages(inputs: readonly ImageInput[]): Promise<ImageEmbedding[]> {
    const results: ImageEmbedding[] = new Array(inputs.length);
    const windows: number[][] = [];
    for (let s = 0; s < inputs.length; s += this.maxBatch) {
      windows.push(Array.from({ length: Math.min(this.maxBatch, inputs.length - s) }, (_, i) => s + i));
    }
    const decodeWindow = (idx: number[]) => Promise.all(idx.map((i) => this.decode(inputs[i]!)));
    let next = windows.length ? decodeWindow(windows[0]!) : undefined;
    for (let w = 0; w < windows.length; w++) {
      const decoded = await next!;
      next = w + 1 < windows.length ? decodeWindow(windows[w + 1]!) : undefined;
      const slots = windows[w]!;
      const good: { slot: number; raw: RawImage; source: ImageSource }[] = [];
      decoded.forEach((d, k) => {
        if (d.ok) good.push({ slot: slots[k]!, raw: d.raw, source: d.source });
        else results[slots[k]!] = { ok: false, error: d.error };
      });
      if (good.length === 0) continue;
      try {
        const vectors = await this.encodeDecoded(good.map((g) => g.raw));
        good.forEach((g, j) => {
          results[g.slot] = { ok: true, vector: vectors[j]!, source: g.source };
        });
      } catch (err) {
        const error = asMatchdError(err);
        for (const g of good) results[g.slot] = { ok: false, error };
      }
    }
    return results;
  }

  /** Score one image against texts: for each text { text, cosine, score, band, truncated }. Throws the image's error. */
  async score(image: ImageInput, texts: readonly string[]): Promise<TextScore[]> {
    const [embedded] = await this.embedImages([image]);
    if (!embedded!.ok) throw embedded!.error;
    return scoreTexts(embedded!.vector, await this.embedTexts(texts), this.range, this.bands);
  }

  /** Score embeddings already computed (for callers that batch images themselves). */
  scoreVector(vector: Float32Array, texts: readonly TextEmbedding[]): TextScore[] {
    return scoreTexts(vector, texts, this.range, this.bands);
  }

  /** Bulk scoring: images batched through the engine, each pair's result or error in order. */
  async scoreMany(pairs: readonly { image: ImageInput; texts: readonly string[] }[]): Promise<PairResult[]> {
    const textSets = await Promise.all(
      pairs.map(async (p) => {
        try {
          return { ok: true as const, texts: await this.embedTexts(p.texts) };
        } catch (err) {
          if (!isMatchdError(err)) throw err;
          return { ok: false as const, error: err };
        }
      }),
    );
    const images = await this.embedImages(pairs.map((p) => p.image));
    return pairs.map((_, i) => {
      const t = textSets[i]!;
      const img = images[i]!;
      if (!t.ok) return { ok: false, error: t.error };
      if (!img.ok) return { ok: false, error: img.error };
      return { ok: true, results: scoreTexts(img.vector, t.texts, this.range, this.bands) };
    });
  }

  /** Release both sessions (waits for nothing: callers stop submitting first). */
  close(): void {
    this.image.dispose();
    this.text.dispose();
  }
}
