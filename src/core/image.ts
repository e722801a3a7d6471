/**
 * The image pipeline: any input (path, Buffer, stream) → exactly spec.width × spec.height, 3-channel, 8-bit sRGB
 * raw pixels, ready for `addon().packImages` (no per-pixel JS anywhere).
 *
 * Order of defences, cheapest first: byte limit (fs.stat / while reading a stream) → content sniffing (magic bytes,
 * never the extension) → header-only `metadata()` and the pixel limit, before anything is decoded →
 * `limitInputPixels` again inside the decode → `failOn: 'error'` so truncated or corrupt data is an error rather
 * than a partially grey image. Every failure is a MatchdError naming the input, with MATCHD_IMAGE_DECODE,
 * MATCHD_IMAGE_TOO_LARGE or MATCHD_IMAGE_UNSUPPORTED, so a batch can settle each image on its own.
 */
import sharp, { type Metadata } from 'sharp';
// One libvips thread per image. Parallelism comes from decoding several images at once (the pipeline's
// decodeConcurrency, each decode one libuv pool task), which the pipeline shrinks while ONNX Runtime runs; libvips'
// own threads per image (by default one per core) would multiply with that, take the cores ORT's intra-op threads
// wait on, and escape the budget. See thread-pool.ts for sizing the pool.
sharp.concurrency(1);
import { Checker } from './check.ts';
import { MatchdError } from './errors.ts';
import { coverCrop } from './image/geometry.ts';
import { resampleWindow, toRaw, type RawOut } from './image/resample.ts';
import { admitImage, fromSharp } from './image/admit.ts';
import type { RawImage } from './native.ts';

export { describeContent, sniffFormat } from './image/sniff.ts';
export { DECODABLE_FORMATS, FAIL_ON, fromSharp } from './image/admit.ts';

export type ImageInput = string /* file path */ | Buffer | Uint8Array | NodeJS.ReadableStream;

/**
 * - `shortest-edge-crop`: scale so the image covers width × height (for a square target: shortest edge to the
 *   size; or to `shortestEdge`), then centre-crop, with Hugging Face's rounding (image/geometry.ts). The CLIP
 *   preprocessing.
 * - `squash`: scale each axis independently to fill exactly, ignoring the aspect ratio.
 * - `pad`: scale to fit inside (contain), centred, the rest filled with the background colour.
 */
export type ResizeMode = 'shortest-edge-crop' | 'squash' | 'pad';
export type ResizeKernel = 'lanczos3' | 'cubic' | 'linear' | 'nearest';

/** The kernel for each manifest `image.resample` (Hugging Face / PIL filter names). */
export const KERNEL_OF_RESAMPLE = { bicubic: 'cubic', bilinear: 'linear', nearest: 'nearest', lanczos: 'lanczos3' } as const satisfies Record<string, ResizeKernel>;

export interface ImageSpec {
  width: number;
  height: number;
  resize: ResizeMode;
  /** Colour that alpha is flattened onto and that `pad` fills with (default white). */
  background?: [number, number, number];
  /** Resampling kernel (default 'cubic': Catmull-Rom, what PIL's BICUBIC used by CLIP-style preprocessing is). */
  kernel?: ResizeKernel;
  /**
   * `shortest-edge-crop` only: resize so the shorter side is this many pixels before the centre crop (Hugging Face's
   * `size.shortest_edge`, e.g. 256 before a 224 crop). Default (null): the smallest size that covers the target.
   */
  shortestEdge?: number | null;
}

export interface DecodeLimits {
  /** Most pixels (width × height of the first frame, read from the header before decoding). */
  maxPixels: number;
  /** Most bytes of encoded input (checked with fs.stat for paths, enforced while reading streams). */
  maxBytes: number;
}

export interface ImageSourceInfo {
  /** The sniffed container: 'jpeg', 'png', 'gif', 'webp', 'tiff', 'avif', 'heif'. */
  format: string;
  /** Size as displayed, i.e. after EXIF orientation. */
  width: number;
  height: number;
}

export type LoadedImage = RawImage & { channels: 3; source: ImageSourceInfo };

export const DEFAULT_LIMITS: Readonly<DecodeLimits> = Object.freeze({ maxPixels: 50_000_000, maxBytes: 50 * 1024 * 1024 });

const RESIZE_MODES: readonly ResizeMode[] = ['shortest-edge-crop', 'squash', 'pad'];
const KERNELS: readonly ResizeKernel[] = ['lanczos3', 'cubic', 'linear', 'nearest'];
/** Largest output side accepted in a spec (sharp's own dimension limit is 0x3FFF per side for many formats). */
const MAX_SIDE = 16383;
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validate decode limits at the edge; missing fields take the defaults. Throws MATCHD_BAD_OPTION listing every problem. */
export function limitsFrom(partial?: Partial<DecodeLimits> | unknown): DecodeLimits {
  if (partial === undefined) return { ...DEFAULT_LIMITS };
  const c = new Checker();
  if (!isPlainObject(partial)) {
    c.problems.push(`Expected an object for limits but received ${partial === null ? 'null' : typeof partial}`);
    c.done('MATCHD_BAD_OPTION', 'Invalid image decode limits');
  }
  const p = partial as Record<string, unknown>;
  c.known('limits', p, ['maxPixels', 'maxBytes']);
  const limits = {
    maxPixels: c.int('limits.maxPixels', p.maxPixels, DEFAULT_LIMITS.maxPixels, 1),
    maxBytes: c.int('limits.maxBytes', p.maxBytes, DEFAULT_LIMITS.maxBytes, 1),
  };
  c.done('MATCHD_BAD_OPTION', 'Invalid image decode limits');
  return limits;
}

/** Validate an ImageSpec; fills the defaults (white background, cubic kernel). Throws MATCHD_BAD_OPTION listing every problem. */
export function imageSpecFrom(spec: ImageSpec | unknown): Required<ImageSpec> {
  const c = new Checker();
  if (!isPlainObject(spec)) {
    c.problems.push(`Expected an object for spec but received ${spec === null ? 'null' : typeof spec}`);
    c.done('MATCHD_BAD_OPTION', 'Invalid image spec');
  }
  const s = spec as Record<string, unknown>;
  c.known('spec', s, ['width', 'height', 'resize', 'background', 'kernel', 'shortestEdge']);
  if (s.width === undefined) c.problems.push('Missing spec.width');
  if (s.height === undefined) c.problems.push('Missing spec.height');
  const width = c.int('spec.width', s.width, 1, 1, MAX_SIDE);
  const height = c.int('spec.height', s.height, 1, 1, MAX_SIDE);
  if (s.resize === undefined) c.problems.push(`Missing spec.resize (one of ${RESIZE_MODES.map((m) => `'${m}'`).join(', ')})`);
  const resize = c.oneOf('spec.resize', s.resize, RESIZE_MODES, 'shortest-edge-crop');
  const kernel = c.oneOf('spec.kernel', s.kernel, KERNELS, 'cubic');
  const shortestEdge = s.shortestEdge === undefined || s.shortestEdge === null ? null : c.int('spec.shortestEdge', s.shortestEdge, 1, 1, MAX_SIDE);
  if (shortestEdge !== null && shortestEdge < Math.max(width, height)) {
    c.problems.push(`Expected spec.shortestEdge >= ${Math.max(width, height)} (the larger side of the crop) but received ${shortestEdge}`);
  }
  let background: [number, number, number] = [255, 255, 255];
  if (s.background !== undefined) {
    const bg = s.background;
    if (Array.isArray(bg) && bg.length === 3 && bg.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) {
      background = [bg[0], bg[1], bg[2]];
    } else {
      c.problems.push(`Expected [r, g, b] integers in 0..255 for spec.background but received ${JSON.stringify(bg)}`);
    }
  }
  c.done('MATCHD_BAD_OPTION', 'Invalid image spec');
  return { width, height, resize, kernel, background, shortestEdge };
}

/**
 * Decode + orient + flatten + to 8-bit sRGB + resize, returning exactly spec.width × spec.height, 3 channels.
 * `data` is sharp's output Buffer itself (no copy). Rejects with MATCHD_IMAGE_DECODE / _TOO_LARGE / _UNSUPPORTED
 * for bad inputs, MATCHD_BAD_OPTION for a bad spec or limits, MATCHD_BAD_INPUT for an input of the wrong type.
 */
export async function loadImage(input: ImageInput, spec: ImageSpec, limits?: Partial<DecodeLimits>): Promise<LoadedImage> {
  return decodeImage(input, imageSpecFrom(spec), limitsFrom(limits));
}

/** `loadImage` for callers that validated the spec and limits once, up front (a model family at open). */
export async function decodeImage(input: ImageInput, s: Required<ImageSpec>, lim: DecodeLimits): Promise<LoadedImage> {
  const { buf, src, format, meta, first } = await admitImage(input, lim);
  const { width: w, height: h } = meta;
  const oriented = meta.autoOrient ?? ((meta.orientation ?? 1) >= 5 ? { width: h, height: w } : { width: w, height: h });
  const [r, g, b] = s.background;
  let out: RawOut;
  try {
    const pipe = sharp(buf, first).autoOrient().flatten({ background: { r, g, b } });
    if (s.resize === 'pad') {
      out = await toRaw(pipe.resize(s.width, s.height, { fit: 'contain', position: 'centre', kernel: s.kernel, background: { r, g, b, alpha: 1 } }));
    } else {
      const crop = s.resize === 'shortest-edge-crop'
        ? coverCrop(oriented.width, oriented.height, s.width, s.height, s.shortestEdge)
        : { resizeWidth: s.width, resizeHeight: s.height, left: 0, top: 0 };
      out = await resampleWindow(pipe, oriented, { ...crop, width: s.width, height: s.height }, s.kernel, format !== 'webp');
    }
  } catch (err) {
    if (err instanceof MatchdError) throw err;
    throw fromSharp(err, src, format, lim.maxPixels);
  }

  const { data, info } = out;
  if (info.width !== s.width || info.height !== s.height || info.channels !== 3 || data.length !== s.width * s.height * 3) {
    throw new MatchdError(
      'MATCHD_INTERNAL',
      `image ${src.label}: the pipeline produced ${info.width}×${info.height}×${info.channels} (${data.length} bytes), expected ${s.width}×${s.height}×3`,
      { input: src.label, info },
    );
  }
  return { data, width: s.width, height: s.height, channels: 3, source: { format, width: oriented.width, height: oriented.height } };
}
