/**
 * The two `smart_resize` of GME-Qwen2-VL's reference, with Python's arithmetic (`round` is half to even on the
 * double; `/` is a double division; `math.floor/ceil` on the same doubles), so every size matches the reference.
 *
 * - `fetchSize`: GME's `fetch_image` (gme_inference.py): at least one factor per side, rescaled into
 *   [fetchMinPixels, fetchMaxPixels], then an aspect ratio over maxAspectRatio is CLAMPED (GME logs a warning and
 *   squashes the long side to ratio·short side; it does not raise).
 * - `processorSize`: transformers' Qwen2-VL image processor (4.45-4.51), which raises for a side under the factor
 *   or a ratio over 200; after `fetchSize` neither can happen, but the checks are kept as the reference has them.
 */
import { MatchdError } from '../../../errors.ts';

/** Python's round() for a double: nearest integer, ties to even (70 / 28 = 2.5 → 2). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f; // exact for |x| < 2^52
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The sizing both stages share: round each side to the factor (never below one factor), then if the area is over
 * maxPixels scale down (floor), if under minPixels scale up (ceil). Returns [height, width].
 */
export function smartResize(height: number, width: number, factor: number, minPixels: number, maxPixels: number): [number, number] {
  let h = Math.max(factor, roundHalfEven(height / factor) * factor);
  let w = Math.max(factor, roundHalfEven(width / factor) * factor);
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.floor(height / beta / factor) * factor;
    w = Math.floor(width / beta / factor) * factor;
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}

export interface SizeSpec {
  patchSize: number;
  mergeSize: number;
  minPixels: number;
  maxPixels: number;
  fetchMinPixels: number;
  fetchMaxPixels: number;
  maxAspectRatio: number;
}

const factorOf = (s: SizeSpec) => s.patchSize * s.mergeSize;

/**
 * GME's fetch_image size for an image of height × width: smartResize with the fetch limits, then the aspect clamp.
 * An image so thin that a side floors to 0 (ratio beyond ~16384:1 over fetchMaxPixels) makes the reference divide
 * by zero; here it is MATCHD_IMAGE_ASPECT.
 */
export function fetchSize(height: number, width: number, spec: SizeSpec): [number, number] {
  let [h, w] = smartResize(height, width, factorOf(spec), spec.fetchMinPixels, spec.fetchMaxPixels);
  if (h === 0 || w === 0) {
    throw new MatchdError(
      'MATCHD_IMAGE_ASPECT',
      `${width}×${height} is too thin to resize for the model (a side would become 0 pixels)`,
      { width, height },
    );
  }
  const r = spec.maxAspectRatio;
  if (Math.max(h, w) / Math.min(h, w) > r) {
    if (h > w) h = w * r;
    else w = h * r;
  }
  return [h, w];
}

/** The image processor's size for a fetched height × width (transformers' smart_resize, its checks included). */
export function processorSize(height: number, width: number, spec: SizeSpec): [number, number] {
  const factor = factorOf(spec);
  if (height < factor || width < factor) {
    throw new MatchdError('MATCHD_IMAGE_ASPECT', `${width}×${height} has a side under ${factor} pixels`, { width, height });
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > spec.maxAspectRatio) {
    throw new MatchdError(
      'MATCHD_IMAGE_ASPECT',
      `${width}×${height} has an aspect ratio of ${ratio.toFixed(2)}, over the model's limit of ${spec.maxAspectRatio}`,
      { width, height, ratio, maxAspectRatio: spec.maxAspectRatio },
    );
  }
  return smartResize(height, width, factor, spec.minPixels, spec.maxPixels);
}
