/**
 * What an image decode is asked for, checked once at the edge: the input kinds, the output spec (size, resize mode,
 * kernel, background) and the decode limits, with their defaults. No decoding here (decode.ts, decode-rgb.ts do it).
 */
import { Checker } from '../check.ts';

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

/** The input image as it was, before resizing: what a result reports about it. */
export interface OriginalImage {
  /** The sniffed container: 'jpeg', 'png', 'gif', 'webp', 'tiff', 'avif', 'heif'. */
  format: string;
  /** Size as displayed, i.e. after EXIF orientation. */
  width: number;
  height: number;
}

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

