/**
 * Decoding to a model's input size: any input (path, Buffer, stream) → exactly spec.width × spec.height, 3-channel, 8-bit sRGB
 * raw pixels, ready for `addon().packImages` (no per-pixel JS anywhere).
 *
 * Order of defences, cheapest first: byte limit (fs.stat / while reading a stream) → content sniffing (magic bytes,
 * never the extension) → header-only `metadata()` and the pixel limit, before anything is decoded →
 * `limitInputPixels` again inside the decode → `failOn: 'error'` so truncated or corrupt data is an error rather
 * than a partially grey image. Every failure is a MatchdError naming the input, with MATCHD_IMAGE_DECODE,
 * MATCHD_IMAGE_TOO_LARGE or MATCHD_IMAGE_UNSUPPORTED, so a batch can settle each image on its own.
 */
import sharp from 'sharp';
// One libvips thread per image. Parallelism comes from decoding several images at once (the pipeline's
// decodeConcurrency, each decode one libuv pool task), which the pipeline shrinks while ONNX Runtime runs; libvips'
// own threads per image (by default one per core) would multiply with that, take the cores ORT's intra-op threads
// wait on, and escape the budget. See thread-pool.ts for sizing the pool.
sharp.concurrency(1);
import { MatchdError } from '../errors.ts';
import type { RawImage } from '../native.ts';
import { admitImage, fromSharp } from './admit.ts';
import { coverCrop } from './geometry.ts';
import { resampleWindow, toRaw, type RawOut } from './resample.ts';
import { imageSpecFrom, limitsFrom, type DecodeLimits, type ImageInput, type ImageSpec, type OriginalImage } from './spec.ts';

export type LoadedImage = RawImage & { channels: 3; original: OriginalImage };

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
  const { buf, name, format, meta, first } = await admitImage(input, lim);
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
    throw fromSharp(err, name, format, lim.maxPixels);
  }

  const { data, info } = out;
  if (info.width !== s.width || info.height !== s.height || info.channels !== 3 || data.length !== s.width * s.height * 3) {
    throw new MatchdError(
      'MATCHD_INTERNAL',
      `image ${name.label}: the pipeline produced ${info.width}×${info.height}×${info.channels} (${data.length} bytes), expected ${s.width}×${s.height}×3`,
      { input: name.label, info },
    );
  }
  return { data, width: s.width, height: s.height, channels: 3, original: { format, width: oriented.width, height: oriented.height } };
}
