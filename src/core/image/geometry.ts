/**
 * Where `shortest-edge-crop` resizes to and which part it keeps, computed the way Hugging Face's image processors
 * (CLIPImageProcessor: resize the shortest edge, then `center_crop`) do, so that a package imported from a
 * preprocessor_config.json sees the same pixels as the model saw in training: the long side is truncated
 * (`int(size * long / short)`), the crop offset is floored. sharp's own `fit: 'cover'` rounds both differently,
 * which shifts the crop by up to a pixel and rescales by up to half a pixel.
 */

export interface CoverCrop {
  /** The size to resize the whole image to. */
  resizeWidth: number;
  resizeHeight: number;
  /** The top-left corner of the width × height window kept, in the resized image. */
  left: number;
  top: number;
}

/**
 * `shortestEdge` set (the processor's `size.shortest_edge`): the shorter side becomes exactly that many pixels.
 * Unset: the smallest size that covers width × height (for a square target, the same as shortestEdge = its side).
 */
export function coverCrop(srcWidth: number, srcHeight: number, width: number, height: number, shortestEdge: number | null): CoverCrop {
  let rw: number;
  let rh: number;
  if (shortestEdge !== null) {
    if (srcWidth <= srcHeight) [rw, rh] = [shortestEdge, Math.floor((shortestEdge * srcHeight) / srcWidth)];
    else [rw, rh] = [Math.floor((shortestEdge * srcWidth) / srcHeight), shortestEdge];
  } else if (width * srcHeight >= height * srcWidth) {
    [rw, rh] = [width, Math.floor((width * srcHeight) / srcWidth)];
  } else {
    [rw, rh] = [Math.floor((height * srcWidth) / srcHeight), height];
  }
  // Never smaller than the window (a shortestEdge below the crop size would need padding, which the manifest refuses).
  rw = Math.max(rw, width);
  rh = Math.max(rh, height);
  return { resizeWidth: rw, resizeHeight: rh, left: Math.floor((rw - width) / 2), top: Math.floor((rh - height) / 2) };
}
