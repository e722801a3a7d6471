// GME-Qwen2-VL image preprocessing against the Pillow + numpy reference: the uint8 image after each resize is
// identical, and so are pixel_values, position_ids and the grid. Bad inputs keep their codes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MatchdError, type ErrorCode } from '../../src/core/errors.ts';
import {
  GME_IMAGE_DEFAULTS, loadGmeImage, packGmeImage, patchRowLength, prepareGmeImage, type GmeImageSpec,
} from '../../src/core/model/families/gme-qwen2-vl/preprocess.ts';
import { addon, type Raster } from '../../src/core/native.ts';
import { decodeRgb } from '../../src/core/image/decode-rgb.ts';
import sharp from 'sharp';
import { gmeImageCases, writeCases, type GmeImageCase } from '../fixtures/gme-images.ts';
import { pngBomb, truncatedJpeg, writeImage } from '../fixtures/images.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { firstDifference, referencePreprocess, type ReferenceResult } from '../fixtures/pillow.ts';

const withCode = (code: ErrorCode, pattern?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof MatchdError, `expected a MatchdError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

const REFERENCE_EXACT: GmeImageSpec = { ...GME_IMAGE_DEFAULTS, exifOrientation: false };
const ORIENTED: GmeImageSpec = { ...GME_IMAGE_DEFAULTS, exifOrientation: true };

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Run matchd's preprocessing on `path` and compare every stage with the reference's result. */
async function assertMatchesReference(path: string, spec: GmeImageSpec, ref: ReferenceResult): Promise<void> {
  assert.equal(ref.error, undefined, `the reference failed on ${path}: ${ref.error}`);
  const stages: Record<string, Raster> = {};
  const got = await prepareGmeImage(path, spec, undefined, (stage, img) => {
    stages[stage] = img;
  });
  const fetched = stages.fetched!, processed = stages.processed!;
  assert.deepEqual([fetched.height, fetched.width], [ref.fetched.height, ref.fetched.width], 'size after fetch_image');
  assert.equal(firstDifference(fetched.data, ref.fetched.data), null, 'uint8 after the fetch_image resize');
  assert.deepEqual([processed.height, processed.width], [ref.processed.height, ref.processed.width], 'size after the processor');
  assert.equal(firstDifference(processed.data, ref.processed.data), null, 'uint8 after the processor resize');
  assert.deepEqual(got.grid, ref.grid);
  assert.equal(got.pixelValues.length, ref.pixelValues.length);
  assert.ok(maxAbsDiff(got.pixelValues, ref.pixelValues) <= 1e-6, 'pixel_values within 1e-6');
  assert.equal(firstDifference(got.pixelValues, ref.pixelValues), null, 'pixel_values bit-identical');
  assert.equal(firstDifference(got.positionIds, ref.positionIds), null, 'position_ids');
  assert.equal(got.visualTokens, (ref.grid[1] * ref.grid[2]) / 4);
  assert.deepEqual([got.original.width, got.original.height], ref.source, 'source size (displayed size when oriented)');
}

describe('gme-qwen2-vl: image preprocessing equals the Pillow + numpy reference', () => {
  let dir: string;
  let cases: GmeImageCase[];
  let paths: string[];
  let plain: ReferenceResult[];
  let transposed: ReferenceResult[];
  before(async () => {
    dir = tmpDir('matchd-gme-pre-');
    cases = await gmeImageCases();
    paths = writeCases(dir, cases);
    plain = referencePreprocess(dir, paths);
    transposed = referencePreprocess(dir, paths, { exifTranspose: true });
  });
  after(cleanupTmpDirs);

  test('every case, exifOrientation false (reference-exact): each stage identical', async () => {
    for (const [i, c] of cases.entries()) {
      await assertMatchesReference(paths[i]!, REFERENCE_EXACT, plain[i]!).catch((e: Error) => {
        throw new Error(`${c.name} (${c.why}): ${e.message}`);
      });
    }
  });

  test('every case, exifOrientation true: identical to the reference run on the EXIF-transposed image', async () => {
    for (const [i, c] of cases.entries()) {
      await assertMatchesReference(paths[i]!, ORIENTED, transposed[i]!).catch((e: Error) => {
        throw new Error(`${c.name} (${c.why}): ${e.message}`);
      });
    }
  });

  test('the EXIF case really differs between the two settings, and source reports the displayed size', async () => {
    const i = cases.findIndex((c) => c.name === 'exif6.jpg');
    assert.deepEqual(plain[i]!.processed.height === transposed[i]!.processed.height, false, 'orientation 6 swaps the sides');
    const on = await prepareGmeImage(paths[i]!, ORIENTED);
    const off = await prepareGmeImage(paths[i]!, REFERENCE_EXACT);
    assert.deepEqual([on.original.width, on.original.height], [240, 320]);
    assert.deepEqual([off.original.width, off.original.height], [320, 240]);
    assert.deepEqual(on.grid, [1, off.grid[2], off.grid[1]]);
  });

  test('the sources cover the cases the brief names (RGBA, greyscale, palette, 16-bit, animated)', () => {
    const modes = Object.fromEntries(cases.map((c, i) => [c.name, plain[i]!.mode]));
    assert.deepEqual(
      [modes['rgba.png'], modes['grey.png'], modes['palette.png'], modes['rgb16.png'], modes['anim.gif']],
      ['RGBA', 'L', 'P', 'RGB', 'P'],
    );
  });

  test('alpha is dropped, not flattened: the colour under transparent pixels survives', async () => {
    const i = cases.findIndex((c) => c.name === 'rgba.png');
    const flattened = await prepareGmeImage(
      await sharp(paths[i]!).flatten({ background: '#ffffff' }).png().toBuffer(),
      REFERENCE_EXACT,
    );
    const dropped = await prepareGmeImage(paths[i]!, REFERENCE_EXACT);
    assert.notEqual(firstDifference(dropped.pixelValues, flattened.pixelValues), null);
    assert.equal(firstDifference(dropped.pixelValues, plain[i]!.pixelValues), null);
  });

  test('16-bit greyscale: matchd keeps the high byte; PIL 9.4 opens it as mode "I" and clips it (white): a deviation', async () => {
    const levels = Buffer.from(Array.from({ length: 56 * 56 }, (_, i) => (i * 7) % 256));
    const bytes = await sharp(levels, { raw: { width: 56, height: 56, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    const path = writeImage(dir, 'grey16.png', bytes);
    const got = await decodeRgb(path, { exifOrientation: false });
    assert.equal(got.data.length, 56 * 56 * 3);
    for (let i = 0; i < levels.length; i++) assert.deepEqual([...got.data.subarray(i * 3, i * 3 + 3)], [levels[i], levels[i], levels[i]]);
    const [ref] = referencePreprocess(dir, [path]);
    assert.equal(ref!.mode, 'I');
    // 56×56 needs no resize, so this is PIL's convert("RGB") output: every sample v·257 clipped to 255.
    assert.ok(ref!.fetched.data.every((v, i) => v === Math.min(255, levels[Math.floor(i / 3)]! * 257)), 'the reference clips to white');
  });

  test('a batch packs into one tensor at row offsets, each slice equal to its image alone', async () => {
    const picks = ['small.png', 'tall.png', 'seventy.png'].map((n) => cases.findIndex((c) => c.name === n));
    const imgs = await Promise.all(picks.map((i) => loadGmeImage(paths[i]!, REFERENCE_EXACT)));
    const row = patchRowLength(REFERENCE_EXACT);
    assert.equal(row, 1176);
    const total = imgs.reduce((s, im) => s + im.patches, 0);
    const out = new Float32Array(total * row).fill(Number.NaN);
    let at = 0;
    const starts = imgs.map((im) => {
      const s = at;
      at += im.patches;
      return s;
    });
    // Packed concurrently, out of order: each writes only its own rows.
    await Promise.all(imgs.map((im, k) => packGmeImage(im, REFERENCE_EXACT, out, starts[k]!)).reverse());
    for (const [k, i] of picks.entries()) {
      const slice = out.subarray(starts[k]! * row, (starts[k]! + imgs[k]!.patches) * row);
      assert.equal(firstDifference(slice, plain[i]!.pixelValues), null, cases[i]!.name);
    }
  });

  describe('bad inputs keep their codes (per item)', () => {
    test('a decompression bomb is refused from the header: MATCHD_IMAGE_TOO_LARGE', async () => {
      const path = writeImage(dir, 'bomb.png', pngBomb(50_000, 50_000));
      await assert.rejects(prepareGmeImage(path, ORIENTED), withCode('MATCHD_IMAGE_TOO_LARGE', /bomb\.png.*50000×50000.*before decoding/));
    });
    test('a truncated JPEG: MATCHD_IMAGE_DECODE', async () => {
      const { truncated } = await truncatedJpeg();
      await assert.rejects(prepareGmeImage(truncated, ORIENTED), withCode('MATCHD_IMAGE_DECODE', /premature end/i));
    });
    test('not an image: MATCHD_IMAGE_UNSUPPORTED; empty: MATCHD_IMAGE_DECODE; over the byte limit: MATCHD_IMAGE_TOO_LARGE', async () => {
      await assert.rejects(prepareGmeImage(writeImage(dir, 'words.jpg', Buffer.from('just some words')), ORIENTED), withCode('MATCHD_IMAGE_UNSUPPORTED', /words\.jpg.*not an image/));
      await assert.rejects(prepareGmeImage(Buffer.alloc(0), ORIENTED), withCode('MATCHD_IMAGE_DECODE', /empty/));
      await assert.rejects(prepareGmeImage(cases[0]!.bytes, ORIENTED, { maxBytes: 1000 }), withCode('MATCHD_IMAGE_TOO_LARGE', /limits\.maxBytes/));
    });
    test('an image too thin for the reference (a side would floor to 0) → MATCHD_IMAGE_ASPECT from the header', async () => {
      // 460000×28: over fetchMaxPixels, and 28 / beta < 28 floors to 0; Python divides by zero there. The file is a
      // 100-byte PNG whose pixel data is far too short: decoding would fail as MATCHD_IMAGE_DECODE, so ASPECT proves
      // the refusal came from the header.
      const path = writeImage(dir, 'sliver.png', pngBomb(460_000, 28));
      await assert.rejects(prepareGmeImage(path, ORIENTED), withCode('MATCHD_IMAGE_ASPECT', /sliver\.png.*460000×28.*too thin/));
    });
    test('pixel and byte limits are still validated: MATCHD_BAD_OPTION', async () => {
      await assert.rejects(prepareGmeImage(paths[1]!, ORIENTED, { maxPixels: -1 }), withCode('MATCHD_BAD_OPTION'));
    });
  });

  describe('packVisionPatches bad calls → MATCHD_BAD_INPUT', () => {
    const spec = { patchSize: 14, temporalPatchSize: 2, mergeSize: 2, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };
    const img = { data: new Uint8Array(56 * 28 * 3), width: 56, height: 28, channels: 3 as const };
    test('sides not multiples of patchSize·mergeSize', () => {
      assert.throws(() => addon().packVisionPatches({ ...img, data: new Uint8Array(56 * 42 * 3), height: 42 }, new Float32Array(1e6), spec), withCode('MATCHD_BAD_INPUT', /multiples of patchSize\*mergeSize = 28/));
    });
    test('out too small for the rows at that offset', () => {
      assert.throws(() => addon().packVisionPatches(img, new Float32Array(8 * 1176), { ...spec, offset: 1 }), withCode('MATCHD_BAD_INPUT', /8 patch rows of 1176 at row 1 need 10584/));
    });
    test('not RGB, wrong byte count, not a Float32Array, std of 0', () => {
      assert.throws(() => addon().packVisionPatches({ ...img, channels: 4 as 3 }, new Float32Array(8 * 1176), spec), withCode('MATCHD_BAD_INPUT', /channels must be 3/));
      assert.throws(() => addon().packVisionPatches({ ...img, data: new Uint8Array(10) }, new Float32Array(8 * 1176), spec), withCode('MATCHD_BAD_INPUT', /holds 10 bytes/));
      assert.throws(() => addon().packVisionPatches(img, new Float64Array(8 * 1176) as unknown as Float32Array, spec), withCode('MATCHD_BAD_INPUT', /Float32Array/));
      assert.throws(() => addon().packVisionPatches(img, new Float32Array(8 * 1176), { ...spec, std: [1, 0, 1] }), withCode('MATCHD_BAD_INPUT', /std must not contain 0/));
    });
  });
});
