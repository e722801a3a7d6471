/**
 * The model-family interface: how a kind of model turns an image or a text into a unit-length embedding. A family
 * owns its preprocessing and its encode steps; the pipeline (batching, decode-ahead, the text cache) and scoring are
 * shared, so a new family never touches the daemon.
 */
import type { EngineOptions } from '../../engine.ts';
import type { DecodeLimits, ImageInput, OriginalImage } from '../../image/spec.ts';
import type { Manifest } from '../manifest.ts';
import type { ModelPackage } from '../package.ts';

/** An image made ready for its encoder: the family's own payload plus what the batcher needs to know. */
export interface PreparedImage {
  /** What the decoder saw: the container format and the size as displayed. */
  original: OriginalImage;
  /** Its share of a batch's budget: 1 for fixed-size encoders, visual tokens for GME. */
  cost: number;
}

export interface EncodedText {
  /** Unit length. */
  vector: Float32Array;
  /** True when the text was cut to the model's length limit. */
  truncated: boolean;
}

export interface FamilyModel<P extends PreparedImage = PreparedImage> {
  readonly manifest: Manifest;
  /** The execution provider really in use ('cpu' after a CUDA fallback), or 'disposed'. */
  readonly provider: string;
  /** The most `cost` one engine run of images should carry (Infinity when only the image count matters). */
  readonly maxBatchCost: number;
  /** Decode and preprocess one image (CPU work, no engine run). Per-item problems reject with a MatchdError. */
  prepareImage(input: ImageInput): Promise<P>;
  /** Encode prepared images (one engine run, or a few): unit vectors, in order. */
  encodeImages(images: P[]): Promise<Float32Array[]>;
  /** Encode already-validated texts as queries: unit vectors, in order. */
  encodeTexts(texts: string[]): Promise<EncodedText[]>;
  close(): void;
}

export interface FamilyOptions {
  engine?: EngineOptions;
  /** Decode limits, validated once by the caller. */
  limits: DecodeLimits;
}

export interface ModelFamily {
  readonly name: Manifest['family'];
  open(pkg: ModelPackage, options: FamilyOptions): Promise<FamilyModel>;
}
