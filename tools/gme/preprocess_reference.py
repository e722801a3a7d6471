#!/usr/bin/env python3
"""GME-Qwen2-VL image preprocessing the reference way, with Pillow + numpy only (no transformers, no torch).

Two stages, as `gme_inference.py` runs them:
  1. GME's `fetch_image`: open, `convert("RGB")` (alpha dropped, not composited), resize with Pillow's default filter
     (BICUBIC) to `smart_resize_fetch(h, w)` (factor 28, 4·784 .. 16384·784 pixels, aspect clamped to 200:1).
  2. transformers' Qwen2VLImageProcessor (4.45-4.51), reimplemented here: `smart_resize` (256·784 .. 1280·784),
     BICUBIC resize (Pillow returns a copy when the size does not change), ×1/255 in float64 → float32, CLIP mean/std
     in float32, the frame tiled to temporal_patch_size, reshape → transpose (0,3,6,4,7,2,1,5,8) → [P, 1176].

Functions for other tools (tools/gme/reference.py imports them):
  fetch_image(path_or_pil, exif_transpose=False) -> PIL.Image (RGB, fetched size)
  process_image(pil) -> (pixel_values float32 [P, 1176], (1, gh, gw))
  preprocess(path_or_pil) -> dict with every stage (uint8 arrays after each resize, pixel_values, grid)
  position_ids(gh, gw) -> int64 [P, 2] (row, col of each patch in 2×2-merge order)
  smart_resize_fetch(h, w, ...) / smart_resize(h, w, ...) -> (h, w)

CLI (used by matchd's tests; every output is raw little-endian with its shape in a JSON file):
  preprocess_reference.py process --out DIR [--exif-transpose] IMAGE...
      DIR/N.fetched.u8, DIR/N.processed.u8 (H×W×3), DIR/N.pixel_values.f32 ([P, 1176]), DIR/N.position_ids.i64,
      DIR/result.json: [{input, mode, source: [w, h], fetched: [h, w], processed: [h, w], grid: [1, gh, gw]}]
      (an image the reference rejects gets {input, error} instead).
  preprocess_reference.py smart-resize < cases.json     [[h, w, factor, min_pixels, max_pixels, "fetch"|"processor"]...]
      prints [[h, w] or {"error": message}, ...]
  preprocess_reference.py resize --out DIR < jobs.json
      jobs: [{"input": raw 8-bit path, "mode": "L"|"La"|"RGB"|"RGBa", "size": [w, h], "width", "height", "filter"}...]
      DIR/N.u8 = Pillow's Image.resize((width, height), filter) of that image, filter "bicubic"|"bilinear"|"lanczos".
      ("La"/"RGBa" are Pillow's premultiplied modes: resized channel by channel, like "L"/"RGB".)
"""
import argparse
import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageOps

IMAGE_FACTOR = 28
FETCH_MIN_PIXELS = 4 * 28 * 28
FETCH_MAX_PIXELS = 16384 * 28 * 28
MAX_RATIO = 200
MIN_PIXELS = 256 * 28 * 28
MAX_PIXELS = 1280 * 28 * 28
PATCH_SIZE = 14
TEMPORAL_PATCH_SIZE = 2
MERGE_SIZE = 2
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

FILTERS = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR, 'lanczos': Image.LANCZOS}


def smart_resize_fetch(height, width, factor=IMAGE_FACTOR, min_pixels=FETCH_MIN_PIXELS, max_pixels=FETCH_MAX_PIXELS,
                       max_ratio=MAX_RATIO):
    """GME's fetch_image sizing: round to the factor (at least one factor), rescale into [min, max] pixels, then clamp
    the aspect ratio of the result to max_ratio (GME logs a warning and squashes; it does not raise).
    A side that floors to 0 makes GME divide by zero: ZeroDivisionError, as in the reference."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    if max(h_bar, w_bar) / min(h_bar, w_bar) > max_ratio:
        if h_bar > w_bar:
            h_bar = w_bar * max_ratio
        else:
            w_bar = h_bar * max_ratio
    return h_bar, w_bar


def smart_resize(height, width, factor=IMAGE_FACTOR, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS,
                 max_ratio=MAX_RATIO):
    """transformers' Qwen2-VL smart_resize: raises ValueError for a side under the factor or a ratio over 200."""
    if height < factor or width < factor:
        raise ValueError(f'height:{height} or width:{width} must be larger than factor:{factor}')
    if max(height, width) / min(height, width) > max_ratio:
        raise ValueError(f'absolute aspect ratio must be smaller than {max_ratio}, got {max(height, width) / min(height, width)}')
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def fetch_image(image, exif_transpose=False):
    """GME's fetch_image for a path or a PIL image. exif_transpose=True applies the EXIF orientation first (matchd's
    default; the reference does not)."""
    img = image if isinstance(image, Image.Image) else Image.open(image)
    if exif_transpose:
        img = ImageOps.exif_transpose(img)
    img = img.convert('RGB')
    width, height = img.size
    resized_height, resized_width = smart_resize_fetch(height, width)
    return img.resize((resized_width, resized_height))  # Pillow's default filter: BICUBIC


def resize_for_processor(image):
    """The processor's resize step: uint8 RGB array [H, W, 3] at the smart_resize size (BICUBIC)."""
    width, height = image.size
    h, w = smart_resize(height, width)
    return np.asarray(image.resize((w, h), Image.BICUBIC), dtype=np.uint8)


def patchify(rgb):
    """uint8 [H, W, 3] → (pixel_values float32 [P, C·T·p·p], (1, gh, gw)), the processor's arithmetic and layout."""
    x = rgb.astype(np.float64) * (1 / 255)  # transformers' rescale upcasts first
    x = x.astype(np.float32)
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    patches = x.transpose(2, 0, 1)[None]  # [1, C, H, W]
    patches = np.tile(patches, (TEMPORAL_PATCH_SIZE, 1, 1, 1))
    channel = patches.shape[1]
    grid_t = patches.shape[0] // TEMPORAL_PATCH_SIZE
    grid_h, grid_w = rgb.shape[0] // PATCH_SIZE, rgb.shape[1] // PATCH_SIZE
    patches = patches.reshape(grid_t, TEMPORAL_PATCH_SIZE, channel, grid_h // MERGE_SIZE, MERGE_SIZE, PATCH_SIZE,
                              grid_w // MERGE_SIZE, MERGE_SIZE, PATCH_SIZE)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w, channel * TEMPORAL_PATCH_SIZE * PATCH_SIZE * PATCH_SIZE)
    return np.ascontiguousarray(flat, dtype=np.float32), (grid_t, grid_h, grid_w)


def process_image(image):
    """The Qwen2-VL image processor on a fetched PIL image → (pixel_values [P, 1176] float32, (1, gh, gw))."""
    return patchify(resize_for_processor(image))


def position_ids(grid_h, grid_w):
    """(row, col) of each patch in 2×2-merge order, int64 [P, 2] (what the vision tower's rotary embedding reads)."""
    hpos = np.arange(grid_h)[:, None].repeat(grid_w, 1)
    wpos = np.arange(grid_w)[None, :].repeat(grid_h, 0)
    m = MERGE_SIZE

    def order(pos):
        return pos.reshape(grid_h // m, m, grid_w // m, m).transpose(0, 2, 1, 3).reshape(-1)

    return np.stack([order(hpos), order(wpos)], axis=-1).astype(np.int64)


def preprocess(image, exif_transpose=False):
    """Every stage for one image: the source mode, its (width, height), the uint8 image after each resize, the patch
    tensor, the grid and the position ids."""
    src = image if isinstance(image, Image.Image) else Image.open(image)
    mode = src.mode
    if exif_transpose:
        src = ImageOps.exif_transpose(src)
    size = src.size  # as fetch_image sees it: after the EXIF transpose when one is asked for
    fetched = fetch_image(src)
    processed = resize_for_processor(fetched)
    pixel_values, grid = patchify(processed)
    return {
        'mode': mode,
        'source': list(size),
        'fetched': np.asarray(fetched, dtype=np.uint8),
        'processed': processed,
        'pixel_values': pixel_values,
        'grid': list(grid),
        'position_ids': position_ids(grid[1], grid[2]),
    }


def _write(path, array, dtype):
    np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder('<')).tofile(path)


def _cmd_process(args):
    os.makedirs(args.out, exist_ok=True)
    results = []
    for n, path in enumerate(args.images):
        try:
            r = preprocess(path, exif_transpose=args.exif_transpose)
        except (ValueError, ZeroDivisionError) as e:
            results.append({'input': path, 'error': f'{type(e).__name__}: {e}'})
            continue
        _write(os.path.join(args.out, f'{n}.fetched.u8'), r['fetched'], np.uint8)
        _write(os.path.join(args.out, f'{n}.processed.u8'), r['processed'], np.uint8)
        _write(os.path.join(args.out, f'{n}.pixel_values.f32'), r['pixel_values'], np.float32)
        _write(os.path.join(args.out, f'{n}.position_ids.i64'), r['position_ids'], np.int64)
        results.append({
            'input': path, 'mode': r['mode'], 'source': r['source'],
            'fetched': list(r['fetched'].shape[:2]), 'processed': list(r['processed'].shape[:2]),
            'grid': r['grid'], 'pixelValues': list(r['pixel_values'].shape),
        })
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump(results, f)


def _cmd_smart_resize(_args):
    out = []
    for h, w, factor, lo, hi, kind in json.load(sys.stdin):
        fn = smart_resize_fetch if kind == 'fetch' else smart_resize
        try:
            out.append(list(fn(h, w, factor=factor, min_pixels=lo, max_pixels=hi)))
        except (ValueError, ZeroDivisionError) as e:
            out.append({'error': f'{type(e).__name__}: {e}'})
    json.dump(out, sys.stdout)


RAW_MODES = {'L': 1, 'La': 2, 'RGB': 3, 'RGBa': 4}


def _cmd_resize(args):
    os.makedirs(args.out, exist_ok=True)
    for n, job in enumerate(json.load(sys.stdin)):
        with open(job['input'], 'rb') as f:
            data = f.read()
        mode, size = job['mode'], tuple(job['size'])
        if size[0] * size[1] * RAW_MODES[mode] != len(data):
            raise SystemExit(f"{job['input']}: {len(data)} bytes is not {size[0]}x{size[1]} {mode}")
        img = Image.frombytes(mode, size, data)
        out = img.resize((job['width'], job['height']), FILTERS[job['filter']])
        _write(os.path.join(args.out, f'{n}.u8'), np.asarray(out), np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('process', help='full preprocessing of images, every stage written')
    p.add_argument('--out', required=True)
    p.add_argument('--exif-transpose', action='store_true', help='apply EXIF orientation first (matchd default)')
    p.add_argument('images', nargs='+')
    p.set_defaults(run=_cmd_process)
    p = sub.add_parser('smart-resize', help='sizes for a JSON list of cases on stdin')
    p.set_defaults(run=_cmd_smart_resize)
    p = sub.add_parser('resize', help="Pillow's resize for a JSON list of jobs on stdin")
    p.add_argument('--out', required=True)
    p.set_defaults(run=_cmd_resize)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == '__main__':
    main()
