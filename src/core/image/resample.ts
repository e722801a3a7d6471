/**
 * Resampling to a window of the resized image, close to what PIL's `Image.resize` (Hugging Face's image processors)
 * produces, with sharp only.
 *
 * Shrinking: sharp's `resize` is a convolution whose kernel widens with the reduction, like PIL's, and matches it to
 * ~0.2 grey levels on average. Enlarging is different: libvips ignores the kernel and samples with the pixel-corner
 * convention, half a source pixel away from PIL's pixel-centre convention (mean error ~20 levels on fine detail at
 * 2.8×). So an enlarged axis is interpolated with `affine` instead, offset to the centre convention, after the edge
 * pixels are replicated (PIL renormalises its kernel at the borders; vips would pull in black).
 *
 * `fastShrinkOnLoad: false` is for WebP: with it on, libwebp's own scaler shrinks while decoding, by any factor, and
 * the kernel is ignored (1.1 levels mean error at 1.14×, 0.5 without; JPEG is unaffected, as measured).
 *
 * Three sharp passes when an axis is enlarged (images smaller than the model input, so small): A shrinks the
 * shrinking axes and cuts the rows and columns the window needs, plus the kernel's reach, and replicates the edges;
 * B interpolates; the window is then copied out row by row.
 */
import sharp, { type OutputInfo, type Sharp } from 'sharp';
import { MatchdError } from '../errors.ts';
import type { ResizeKernel } from './spec.ts';

export interface Window {
  /** The size the whole image is resized to. */
  resizeWidth: number;
  resizeHeight: number;
  /** The part of it kept. */
  left: number;
  top: number;
  width: number;
  height: number;
}

export type RawOut = { data: Buffer; info: OutputInfo };

/** Edge pixels replicated around pass A's output: bicubic reads 2 source pixels either side. */
const PAD = 3;
/** affine's interpolators; vips has no Lanczos one, so a Lanczos enlargement is bicubic (shrinking keeps Lanczos). */
const INTERPOLATOR = { cubic: 'bicubic', lanczos3: 'bicubic', linear: 'bilinear', nearest: 'nearest' } as const;

interface Axis {
  /** Pass A: the size this axis is resized to, then the range kept. */
  size: number;
  from: number;
  count: number;
  /** Pass B: the scale and the output offset (pixel-centre convention, window origin at 0). */
  scale: number;
  offset: number;
}

function plan(source: number, resized: number, start: number, length: number): Axis {
  if (resized <= source) return { size: resized, from: start, count: length, scale: 1, offset: -PAD };
  const s = resized / source;
  // Source pixel x lands at s·(x + 0.5) − 0.5; keep every source pixel the window's samples read.
  const first = Math.max(0, Math.floor((start + 0.5) / s - 0.5) - 2);
  const last = Math.min(source - 1, Math.ceil((start + length - 0.5) / s - 0.5) + 2);
  return { size: source, from: first, count: last - first + 1, scale: s, offset: s * (first - PAD + 0.5) - 0.5 - start };
}

/** Finish a pipeline as 8-bit sRGB, 3 channels, raw. */
export function toRaw(pipe: Sharp): Promise<RawOut> {
  return pipe.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
}

/**
 * Resize `pipe` (oriented and flattened, `source` as displayed) to window.resizeWidth × resizeHeight and keep the
 * window, as raw 3-channel pixels.
 */
export async function resampleWindow(
  pipe: Sharp, source: { width: number; height: number }, w: Window, kernel: ResizeKernel, fastShrinkOnLoad = true,
): Promise<RawOut> {
  const whole = w.left === 0 && w.top === 0 && w.width === w.resizeWidth && w.height === w.resizeHeight;
  if (w.resizeWidth <= source.width && w.resizeHeight <= source.height) {
    const resized = pipe.resize(w.resizeWidth, w.resizeHeight, { fit: 'fill', kernel, fastShrinkOnLoad });
    return toRaw(whole ? resized : resized.extract({ left: w.left, top: w.top, width: w.width, height: w.height }));
  }
  const x = plan(source.width, w.resizeWidth, w.left, w.width);
  const y = plan(source.height, w.resizeHeight, w.top, w.height);
  if (x.size !== source.width || y.size !== source.height) pipe = pipe.resize(x.size, y.size, { fit: 'fill', kernel, fastShrinkOnLoad });
  const a = await toRaw(
    pipe
      .extract({ left: x.from, top: y.from, width: x.count, height: y.count })
      .extend({ top: PAD, bottom: PAD, left: PAD, right: PAD, extendWith: 'copy' }),
  );
  // Computed, not read from a.info: sharp reports the size before `extend` when a resize and an extract precede it.
  const aw = x.count + 2 * PAD;
  const ah = y.count + 2 * PAD;
  if (a.data.length !== aw * ah * 3) {
    throw new MatchdError('MATCHD_INTERNAL', `resample: pass A produced ${a.data.length} bytes, expected ${aw}×${ah}×3`);
  }
  const b = await sharp(a.data, { raw: { width: aw, height: ah, channels: 3 } })
    .affine([x.scale, 0, 0, y.scale], { interpolator: INTERPOLATOR[kernel], odx: x.offset, ody: y.offset })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (b.info.width < w.width || b.info.height < w.height || b.info.channels !== 3) {
    throw new MatchdError('MATCHD_INTERNAL', `resample: affine produced ${b.info.width}×${b.info.height}×${b.info.channels}, need ${w.width}×${w.height}×3`);
  }
  const out = Buffer.allocUnsafe(w.width * w.height * 3);
  const rowIn = b.info.width * 3;
  for (let r = 0; r < w.height; r++) b.data.copy(out, r * w.width * 3, r * rowIn, r * rowIn + w.width * 3);
  return { data: out, info: { ...b.info, width: w.width, height: w.height, size: out.length } };
}
