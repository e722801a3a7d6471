/**
 * The one owner of decode → batch → encode, used by the library, the CLI and the daemon alike.
 *
 * Images: each is prepared by its model family (decode + preprocess) as soon as it is handed in, then joins the image
 * batcher; at most `decodeAhead` images are between "handed in" and "encoded", which bounds memory (a GME image is
 * megabytes of patches) and lets decoding run ahead of inference. A partial batch waits for images still decoding, up
 * to `maxDelayMs`, and goes at once when none are.
 * Decoding has a core budget that depends on the engine: `decodeConcurrency` decodes at once while no engine run is in
 * progress, `decodeWhileEncoding` while one is. On CPU, ONNX Runtime splits each operator across its intra-op threads
 * and waits for the slowest: a decode that takes one of those cores stalls every thread of the run, which costs more
 * than the decode saves (bench/end-to-end.ts). So by default decodes only use the cores ORT leaves free while it runs
 * (none when it uses them all, as it does by default) and every core between runs (Matcher.open works it out).
 * Texts: looked up in an LRU cache (model + text), the rest joined from every caller into one text batcher, with
 * concurrent requests for the same text sharing one encode.
 * Engine runs of both kinds share `batchesInFlight` slots. Per-item failures come back as values, never thrown.
 */
import os from 'node:os';
import { Batcher } from './batcher.ts';
import { MatchdError } from './errors.ts';
import { problemsError } from './problems.ts';
import type { ImageInput, OriginalImage } from './image/spec.ts';
import { Limiter } from './limit.ts';
import { Lru } from './lru.ts';
import type { EncodedText, FamilyModel, PreparedImage } from './model/families/index.ts';

export interface PipelineOptions {
  /** Most images per engine run (default 16). */
  maxBatch?: number;
  /** Most family cost per image run (default: the family's own, e.g. a visual-token budget for GME). */
  maxBatchCost?: number;
  /** Most texts per engine run (default 64). */
  maxTextBatch?: number;
  /** How long a partial batch may wait for more items (default 20 ms). */
  maxDelayMs?: number;
  /** Images decoded at once while no engine run is in progress (default: the number of CPUs). */
  decodeConcurrency?: number;
  /**
   * Images decoded at once while an engine run is in progress, at most decodeConcurrency (default: decodeConcurrency;
   * Matcher.open passes the cores the engine leaves free). 0: decoding waits while the engine runs.
   */
  decodeWhileEncoding?: number;
  /** Engine runs at once, images and texts together (default 1: on CPU, ONNX Runtime already uses every core). */
  batchesInFlight?: number;
  /** Images handed in but not yet encoded, at most (default 2 × maxBatch). Beyond it, callers wait. */
  decodeAhead?: number;
  /** Cached text embeddings (default 10 000; 0 disables the cache). */
  textCacheSize?: number;
  /** Each engine run's kind, size and duration (metrics). */
  onBatch?(kind: 'image' | 'text', size: number, ms: number): void;
}

export interface TextEmbedding {
  text: string;
  vector: Float32Array;
  truncated: boolean;
}

export type ImageEmbedding =
  | { ok: true; vector: Float32Array; original: OriginalImage }
  | { ok: false; error: MatchdError };

/** A texts argument checked once: every problem listed in one MATCHD_TEXT_INVALID. */
export function checkTexts(texts: readonly string[]): void {
  if (!Array.isArray(texts) || texts.length === 0) throw new MatchdError('MATCHD_TEXT_INVALID', 'at least one text is required');
  const problems: string[] = [];
  texts.forEach((t, i) => {
    if (typeof t !== 'string') problems.push(`text ${i}: expected a string but received ${typeof t}`);
    else if (t.trim() === '') problems.push(`text ${i}: empty text`);
    else if (!t.isWellFormed()) problems.push(`text ${i}: not well-formed Unicode (lone surrogate), i.e. not encodable as UTF-8`);
  });
  if (problems.length) throw problemsError('MATCHD_TEXT_INVALID', 'invalid text', problems);
}

export function asMatchdError(err: unknown): MatchdError {
  return err instanceof MatchdError ? err : new MatchdError('MATCHD_INTERNAL', (err as Error)?.message ?? String(err));
}

export class Pipeline {
  private readonly decodes: Limiter;
  private readonly ahead: Limiter;
  private readonly engine: Limiter;
  private readonly images: Batcher<PreparedImage, Float32Array>;
  private readonly texts: Batcher<string, EncodedText>;
  private readonly textCache: Lru<string, TextEmbedding>;
  private readonly textsInFlight = new Map<string, Promise<TextEmbedding>>();
  private readonly cachePrefix: string;
  /** Images handed in and not yet prepared (waiting for a decode slot, or decoding). */
  private preparing = 0;
  /** Engine runs in progress (images or texts). */
  private encoding = 0;
  readonly decodeAhead: number;
  readonly decodeConcurrency: number;
  readonly decodeWhileEncoding: number;

  constructor(readonly model: FamilyModel, options: PipelineOptions = {}) {
    const maxBatch = options.maxBatch ?? 16;
    const inFlight = options.batchesInFlight ?? 1;
    const maxDelayMs = options.maxDelayMs ?? 20;
    this.decodeAhead = options.decodeAhead ?? maxBatch * 2;
    this.decodeConcurrency = options.decodeConcurrency ?? os.availableParallelism();
    this.decodeWhileEncoding = Math.min(options.decodeWhileEncoding ?? this.decodeConcurrency, this.decodeConcurrency);
    this.decodes = new Limiter(() => (this.encoding > 0 ? this.decodeWhileEncoding : this.decodeConcurrency));
    this.ahead = new Limiter(this.decodeAhead);
    this.engine = new Limiter(inFlight);
    this.textCache = new Lru(options.textCacheSize ?? 10_000);
    this.cachePrefix = `${model.manifest.name}@${model.manifest.version}\u0000`;
    this.images = new Batcher({
      maxBatch,
      maxCost: options.maxBatchCost ?? model.maxBatchCost,
      cost: (p) => p.cost,
      maxDelayMs,
      maxQueue: this.decodeAhead,
      maxInFlight: inFlight,
      expectingMore: () => this.preparing > 0,
      run: (batch) => this.encode(() => model.encodeImages(batch)),
      onBatch: (size, ms) => options.onBatch?.('image', size, ms),
    });
    const maxTextBatch = options.maxTextBatch ?? 64;
    this.texts = new Batcher({
      maxBatch: maxTextBatch,
      maxDelayMs,
      maxQueue: Number.MAX_SAFE_INTEGER, // bounded by callers' texts, which are validated and limited at intake
      maxInFlight: inFlight,
      expectingMore: () => false,
      run: (batch) => this.encode(() => model.encodeTexts(batch)),
      onBatch: (size, ms) => options.onBatch?.('text', size, ms),
    });
  }

  /** One engine run, counted so that decodes keep to their budget while it lasts. */
  private encode<R>(run: () => Promise<R>): Promise<R> {
    return this.engine.run(async () => {
      this.encoding++;
      try {
        return await run();
      } finally {
        this.encoding--;
        this.decodes.recheck(); // the engine is free: decodes may use every core again
      }
    });
  }

  /** How many more images can be handed in now without waiting (the daemon leases this many jobs). */
  get room(): number {
    return Math.max(0, this.decodeAhead - this.ahead.pending);
  }

  /** Images and texts handed in and not yet finished. */
  get busy(): number {
    return this.ahead.pending + this.texts.queued + this.texts.running;
  }

  /** Batches waiting and running (for /healthz). */
  get stats(): { preparing: number; queued: number; running: number; textsQueued: number } {
    return { preparing: this.preparing, queued: this.images.queued, running: this.images.running + this.texts.running, textsQueued: this.texts.queued };
  }

  get textCacheStats(): { size: number; hits: number; misses: number } {
    return { size: this.textCache.size, hits: this.textCache.hits, misses: this.textCache.misses };
  }

  /** Embed one image; a bad image resolves to `{ ok: false, error }`. */
  embedImage(input: ImageInput): Promise<ImageEmbedding> {
    return this.ahead.run(async () => {
      this.preparing++;
      let prepared: PreparedImage;
      try {
        prepared = await this.decodes.run(() => this.model.prepareImage(input));
      } catch (err) {
        this.preparing--;
        this.images.poke(); // one image fewer on its way: a partial batch may not need to wait for it
        return { ok: false, error: asMatchdError(err) };
      }
      this.preparing--;
      try {
        return { ok: true, vector: await this.images.push(prepared), original: prepared.original };
      } catch (err) {
        return { ok: false, error: asMatchdError(err) };
      }
    });
  }

  /** Embed images, each result in input order. */
  embedImages(inputs: readonly ImageInput[]): Promise<ImageEmbedding[]> {
    return Promise.all(inputs.map((i) => this.embedImage(i)));
  }

  /** Embed texts as queries (the model's instruction applied), unit length, cached. Throws MATCHD_TEXT_INVALID. */
  async embedTexts(texts: readonly string[], { cache = true }: { cache?: boolean } = {}): Promise<TextEmbedding[]> {
    checkTexts(texts);
    return Promise.all(texts.map((t) => this.embedText(t, cache)));
  }

  private embedText(text: string, cache: boolean): Promise<TextEmbedding> {
    const key = this.cachePrefix + text;
    if (cache) {
      const hit = this.textCache.get(key);
      if (hit) return Promise.resolve(hit);
    }
    const running = this.textsInFlight.get(key);
    if (running) return running;
    const p = this.texts.push(text).then(
      (e) => {
        const embedding = { text, vector: e.vector, truncated: e.truncated };
        if (cache) this.textCache.set(key, embedding);
        return embedding;
      },
    ).finally(() => this.textsInFlight.delete(key));
    this.textsInFlight.set(key, p);
    return p;
  }

  /** Resolves when nothing is being prepared, batched or encoded. */
  async idle(): Promise<void> {
    while (this.busy > 0) await Promise.all([this.images.idle(), this.texts.idle(), new Promise((r) => setTimeout(r, 5))]);
  }

  /** Release the model (callers stop handing in work first). */
  close(): void {
    this.model.close();
  }
}
