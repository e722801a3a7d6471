/**
 * Admitting an input as an image, every cheap check first and no pixel decoded: the byte limit while reading, content
 * sniffing (magic bytes, never the extension), the formats this build decodes, then a header-only `metadata()` and
 * the pixel limit. Shared by every decode path (the dual-encoder's resize-to-fit and GME's PIL-like decode).
 */
import sharp, { type Metadata } from 'sharp';
import type { MatchdError } from '../errors.ts';
import type { ImageInput } from '../image.ts';
import { messageOf, readInput, type ByteLimits, type Source } from './read.ts';
import { describeContent, sniffFormat, SNIFF_BYTES } from './sniff.ts';

/** Containers this sharp build decodes. Others that sniffing recognises (bmp, svg, jxl...) are MATCHD_IMAGE_UNSUPPORTED. */
export const DECODABLE_FORMATS: readonly string[] = ['jpeg', 'png', 'gif', 'webp', 'tiff', 'avif', 'heif'];

/**
 * 'error' aborts on truncated or corrupt pixel data (a JPEG cut in half fails with "premature end of JPEG image"
 * instead of decoding to a grey lower half) but tolerates libjpeg/libpng warnings, which many real photos carry.
 */
export const FAIL_ON = 'error' as const;

/** Map a sharp/libvips failure to one of the three codes; the sharp message is kept in the text and in details.cause. */
export function fromSharp(err: unknown, src: Source, format: string, maxPixels: number): MatchdError {
  const msg = messageOf(err);
  if (/exceeds pixel limit/i.test(msg)) {
    return src.fail('MATCHD_IMAGE_TOO_LARGE', `${format} exceeds the limit of ${maxPixels} pixels (limits.maxPixels)`, { format, maxPixels, cause: msg });
  }
  if (/unsupported image format|unsupported (codec|compression|feature)|no decoding plugin|decoder plugin|not supported/i.test(msg)) {
    return src.fail('MATCHD_IMAGE_UNSUPPORTED', `${format} variant this build cannot decode: ${msg}`, { format, cause: msg });
  }
  return src.fail('MATCHD_IMAGE_DECODE', `cannot decode ${format}: ${msg}`, { format, cause: msg });
}

export interface Admitted {
  buf: Buffer;
  src: Source;
  format: string;
  /** The header: size, orientation, channels — no pixels decoded. */
  meta: Metadata & { width: number; height: number };
  /** sharp's input options for the first frame, the pixel limit applied (`extra`, e.g. ignoreIcc, added). */
  first: { failOn: typeof FAIL_ON; pages: 1; page: 0; limitInputPixels: number };
}

/** Read and check an input up to its header (MATCHD_IMAGE_DECODE / _TOO_LARGE / _UNSUPPORTED naming the input). */
export async function admitImage(input: ImageInput, lim: ByteLimits & { maxPixels: number }, extra: { ignoreIcc?: boolean } = {}): Promise<Admitted> {
  const { buf, src } = await readInput(input, lim);
  const head = buf.subarray(0, SNIFF_BYTES);
  const format = sniffFormat(head);
  if (format === null) {
    throw src.fail('MATCHD_IMAGE_UNSUPPORTED', `not an image: found ${describeContent(head)}`, { bytes: buf.length });
  }
  if (!DECODABLE_FORMATS.includes(format)) {
    const why = format === 'svg' ? 'svg (vector) images are not accepted' : `${format} images are not supported by this build`;
    throw src.fail('MATCHD_IMAGE_UNSUPPORTED', `${why} (decodable: ${DECODABLE_FORMATS.join(', ')})`, { format });
  }
  // Header only: no pixel data is decoded here, so a 50000×50000 claim costs nothing. The limit is lifted for this
  // call only so that the refusal below can name the dimensions; the decode itself runs with the limit.
  const first = { failOn: FAIL_ON, pages: 1, page: 0, ...extra } as const;
  let meta: Metadata;
  try {
    meta = await sharp(buf, { ...first, limitInputPixels: false }).metadata();
  } catch (err) {
    throw fromSharp(err, src, format, lim.maxPixels);
  }
  const { width: w, height: h } = meta;
  if (!w || !h) throw src.fail('MATCHD_IMAGE_DECODE', `${format} header has no dimensions`, { format });
  if (w * h > lim.maxPixels) {
    throw src.fail(
      'MATCHD_IMAGE_TOO_LARGE',
      `${format} of ${w}×${h} = ${w * h} pixels exceeds the limit of ${lim.maxPixels} pixels (limits.maxPixels); refused before decoding`,
      { format, width: w, height: h, maxPixels: lim.maxPixels },
    );
  }
  return { buf, src, format, meta: meta as Admitted['meta'], first: { ...first, limitInputPixels: lim.maxPixels } as Admitted['first'] };
}
