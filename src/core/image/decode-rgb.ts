/**
 * Decode to 8-bit RGB at the image's own size, the way PIL's `Image.open(...).convert("RGB")` sees it, for model
 * families whose reference preprocessing resizes with Pillow (GME-Qwen2-VL; `resizeImage` in the addon does that).
 *
 * Differences from `loadImage` (which resizes in sharp for fixed-size encoders), each chosen to match PIL:
 * - alpha is DROPPED, not flattened onto a background (`convert("RGB")` keeps the colour under a transparent pixel);
 * - embedded ICC profiles are ignored (PIL does not colour-manage on open/convert);
 * - EXIF orientation is applied only when asked (`exifOrientation`; PIL does not apply it).
 * Palette and greyscale become RGB; 16-bit samples become 8-bit (the high byte, as PIL does for 16-bit RGB; PIL 9.4
 * opens 16-bit greyscale as mode "I" and clips it to white, which is not reproduced). CMYK JPEGs go through libvips'
 * CMYK conversion, not PIL's naive one. The hostile-input defences are loadImage's, in the same order: byte limit,
 * content sniffing, header-only pixel limit before decoding, `failOn: 'error'`.
 */
import sharp, { type OutputInfo } from 'sharp';
import { MatchdError } from '../errors.ts';
import { limitsFrom, type DecodeLimits, type ImageInput, type ImageSourceInfo } from '../image.ts';
import type { Raster } from '../native.ts';
import { admitImage, fromSharp } from './admit.ts';

export interface DecodeRgbOptions {
  /** Rotate/flip by the EXIF Orientation tag (default true). false reproduces PIL, which ignores the tag. */
  exifOrientation?: boolean;
  /**
   * Called with the displayed width × height read from the header, before any pixel is decoded: a caller that
   * cannot use an image of that shape throws here, so it is refused at the cost of a header read.
   */
  beforeDecode?: (width: number, height: number) => void;
}

export type RgbImage = Raster & { channels: 3; source: ImageSourceInfo };

/**
 * Decode `input` to raw interleaved RGB at its (oriented) size. `data` is sharp's Buffer (no copy). Rejects with
 * MATCHD_IMAGE_DECODE / _TOO_LARGE / _UNSUPPORTED naming the input, MATCHD_BAD_OPTION for bad limits.
 */
export async function decodeRgb(input: ImageInput, options: DecodeRgbOptions = {}, limits?: Partial<DecodeLimits>): Promise<RgbImage> {
  const lim = limitsFrom(limits);
  const orient = options.exifOrientation ?? true;
  const { buf, src, format, meta, first } = await admitImage(input, lim, { ignoreIcc: true });
  const { width: w, height: h } = meta;

  const swapped = orient && (meta.orientation ?? 1) >= 5;
  const [ow, oh] = swapped ? [h, w] : [w, h];
  try {
    options.beforeDecode?.(ow, oh);
  } catch (err) {
    if (err instanceof MatchdError) throw src.fail(err.code, err.message, { format, ...err.details });
    throw err;
  }

  let out: { data: Buffer; info: OutputInfo };
  try {
    let img = sharp(buf, first);
    if (orient) img = img.autoOrient();
    out = await img.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw fromSharp(err, src, format, lim.maxPixels);
  }
  const { data, info } = out;
  if (info.channels !== 3 || info.width !== ow || info.height !== oh || data.length !== ow * oh * 3) {
    throw new MatchdError(
      'MATCHD_INTERNAL',
      `image ${src.label}: decoding produced ${info.width}×${info.height}×${info.channels} (${data.length} bytes), expected ${ow}×${oh}×3`,
      { input: src.label, info },
    );
  }
  return { data, width: ow, height: oh, channels: 3, source: { format, width: ow, height: oh } };
}
