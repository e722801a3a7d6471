/**
 * GME-Qwen2-VL image preprocessing, faithful to the reference (gme_inference.py + transformers' Qwen2VLImageProcessor):
 * decode like PIL `convert("RGB")` → Pillow-BICUBIC resize to GME's fetch size → Pillow-BICUBIC resize to the
 * processor's size (skipped when unchanged: Pillow returns a copy) → ×1/255, CLIP mean/std, patch layout.
 * The resizes and the packing run in the addon, on the libuv pool; the uint8 image after each resize is bit-exact
 * with Pillow 9.4 and the patch values with numpy (test/gme/preprocess.test.ts checks both).
 *
 * One documented deviation: EXIF orientation is applied by default (`exifOrientation: true`); the reference ignores
 * the tag, so phone photos reach it sideways. `exifOrientation: false` reproduces the reference exactly.
 */
import type { DecodeLimits, ImageInput, OriginalImage } from '../../../image/spec.ts';
import { decodeRgb, type RgbImage } from '../../../image/decode-rgb.ts';
import { addon, type Raster, type VisionPatchSpec } from '../../../native.ts';
import { positionIds } from './position-ids.ts';
import { fetchSize, processorSize } from './smart-resize.ts';

/** The `gme.image` block of a gme-qwen2-vl model.yaml (validated by the manifest; trusted here). */
export interface GmeImageSpec extends Omit<VisionPatchSpec, 'offset'> {
  /** The image processor's pixel range (256·784 .. 1280·784 for GME). */
  minPixels: number;
  maxPixels: number;
  /** GME fetch_image's pixel range (4·784 .. 16384·784). */
  fetchMinPixels: number;
  fetchMaxPixels: number;
  /** Aspect ratio GME's fetch_image clamps to (200). */
  maxAspectRatio: number;
  /** Apply EXIF orientation (matchd's default, true); false = the reference, which ignores it. */
  exifOrientation: boolean;
}

/** GME-Qwen2-VL-2B-Instruct's values (its preprocessor_config.json and gme_inference.py), as model.yaml writes them. */
export const GME_IMAGE_DEFAULTS: Readonly<GmeImageSpec> = Object.freeze<GmeImageSpec>({
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
  minPixels: 256 * 28 * 28,
  maxPixels: 1280 * 28 * 28,
  fetchMinPixels: 4 * 28 * 28,
  fetchMaxPixels: 16384 * 28 * 28,
  maxAspectRatio: 200,
  exifOrientation: true,
});

/** A decoded image at the processor's size, ready to be packed (3 bytes a pixel: 1/8 of its float32 patches). */
export interface GmeResizedImage {
  rgb: Raster & { channels: 3 };
  /** [t, h, w] in patches: image_grid_thw. */
  grid: [1, number, number];
  /** Patch rows (t·h·w) and merged visual tokens (rows / mergeSize²): the <|image_pad|> count. */
  patches: number;
  visualTokens: number;
  original: OriginalImage;
  /** Height × width after fetch_image and after the processor's resize (for tests and logs). */
  fetchedSize: [number, number];
}

export interface GmePreparedImage {
  /** [patches, 3·temporalPatchSize·patchSize²] float32, the processor's pixel_values for this image. */
  pixelValues: Float32Array;
  /** [patches, 2] int64: (row, col) of each patch in merge order, the vision graph's position_ids. */
  positionIds: BigInt64Array;
  grid: [1, number, number];
  visualTokens: number;
  original: OriginalImage;
}

/** Floats per patch row: 3 channels × temporalPatchSize frames × patchSize². 1176 for GME. */
export function patchRowLength(spec: Pick<GmeImageSpec, 'patchSize' | 'temporalPatchSize'>): number {
  return 3 * spec.temporalPatchSize * spec.patchSize * spec.patchSize;
}

async function resizeTo(img: Raster & { channels: 3 }, height: number, width: number): Promise<Raster & { channels: 3 }> {
  if (img.width === width && img.height === height) return img;
  const data = await addon().resizeImage(img, { width, height, filter: 'bicubic' });
  return { data, width, height, channels: 3 };
}

/** Sees the uint8 image after each resize (tests compare them with Pillow's, stage by stage). */
export type StageObserver = (stage: 'fetched' | 'processed', image: Raster & { channels: 3 }) => void;

/**
 * The two reference resizes, from an image already decoded like PIL's convert("RGB").
 * Rejects with MATCHD_IMAGE_ASPECT for a shape the reference cannot process.
 */
export async function resizeForGme(decoded: RgbImage, spec: GmeImageSpec, onStage?: StageObserver): Promise<GmeResizedImage> {
  const [fh, fw] = fetchSize(decoded.height, decoded.width, spec);
  const fetched = await resizeTo(decoded, fh, fw);
  onStage?.('fetched', fetched);
  const [ph, pw] = processorSize(fh, fw, spec);
  const rgb = await resizeTo(fetched, ph, pw);
  onStage?.('processed', rgb);
  const gh = ph / spec.patchSize, gw = pw / spec.patchSize;
  const patches = gh * gw;
  return {
    rgb,
    grid: [1, gh, gw],
    patches,
    visualTokens: patches / (spec.mergeSize * spec.mergeSize),
    original: decoded.original,
    fetchedSize: [fh, fw],
  };
}

/**
 * Decode + both resizes: what the pipeline can hold per image until its batch is packed. A shape the reference
 * cannot process is refused from the header, before decoding (MATCHD_IMAGE_ASPECT).
 */
export async function loadGmeImage(
  input: ImageInput,
  spec: GmeImageSpec,
  limits?: Partial<DecodeLimits>,
  onStage?: StageObserver,
): Promise<GmeResizedImage> {
  const decoded = await decodeRgb(
    input,
    { exifOrientation: spec.exifOrientation, beforeDecode: (w, h) => void fetchSize(h, w, spec) },
    limits,
  );
  return resizeForGme(decoded, spec, onStage);
}

/**
 * Write `img`'s patch rows into `out` from patch row `row` on (a batch's images share one tensor, no copies).
 * `out` must hold (row + img.patches) · patchRowLength(spec) floats.
 */
export function packGmeImage(img: GmeResizedImage, spec: GmeImageSpec, out: Float32Array, row = 0): Promise<void> {
  const { patchSize, temporalPatchSize, mergeSize, mean, std } = spec;
  return addon().packVisionPatches(img.rgb, out, { patchSize, temporalPatchSize, mergeSize, mean, std, offset: row });
}

/**
 * One image, start to end: pixel_values [P, 1176], position_ids [P, 2], image_grid_thw and the visual-token count.
 * Per-item errors: MATCHD_IMAGE_DECODE / _TOO_LARGE / _UNSUPPORTED (decoding), MATCHD_IMAGE_ASPECT (shape).
 */
export async function prepareGmeImage(
  input: ImageInput,
  spec: GmeImageSpec,
  limits?: Partial<DecodeLimits>,
  onStage?: StageObserver,
): Promise<GmePreparedImage> {
  const img = await loadGmeImage(input, spec, limits, onStage);
  const pixelValues = new Float32Array(img.patches * patchRowLength(spec));
  await packGmeImage(img, spec, pixelValues);
  return {
    pixelValues,
    positionIds: positionIds(img.grid[1], img.grid[2], spec.mergeSize),
    grid: img.grid,
    visualTokens: img.visualTokens,
    original: img.original,
  };
}
