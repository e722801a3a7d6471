// The addon's Pillow-compatible resize: byte for byte what Pillow (Debian's 9.4) gives, over many shapes and filters.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MatchdError, type ErrorCode } from '../../src/core/errors.ts';
import { addon } from '../../src/core/native.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { MODE_CHANNELS, firstDifference, pillowResize, testRaster, type RawMode, type ResizeJob } from '../fixtures/pillow.ts';

const withCode = (code: ErrorCode, pattern?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof MatchdError, `expected a MatchdError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

/** [in w, in h, out w, out h, what it exercises]. */
const SHAPES: [number, number, number, number, string][] = [
  [67, 45, 28, 28, 'downscale both axes'],
  [640, 480, 224, 224, 'downscale, different factors per axis'],
  [1500, 1000, 333, 222, 'large downscale (4.5×, wide kernels)'],
  [4000, 3000, 1148, 840, 'photo-sized downscale, the GME 1230-token case'],
  [45, 67, 200, 300, 'upscale'],
  [97, 13, 1001, 29, 'odd sizes, upscale'],
  [1, 300, 28, 8400, 'extreme ratio 1×300 → 28×8400'],
  [300, 1, 8400, 28, 'extreme ratio 300×1 → 8400×28'],
  [5000, 3, 28, 28, 'extreme ratio downscale, the vertical pass upscales'],
  [1, 1, 7, 5, 'one pixel up'],
  [2, 2, 1, 1, 'to one pixel'],
  [3, 17, 56, 17, 'width only (vertical pass skipped)'],
  [17, 3, 17, 56, 'height only (horizontal pass skipped)'],
  [96, 80, 97, 79, 'one pixel more and one less'],
  [33, 21, 33, 21, 'same size: a copy'],
  [1000, 700, 1008, 700, 'GME fetch rounding (width to a multiple of 28)'],
  [112, 112, 448, 448, 'GME processor upscale to its minimum'],
];

const cases: ResizeJob[] = [];
for (const [i, [w, h, ow, oh]] of SHAPES.entries()) {
  for (const mode of ['RGB', 'L'] as RawMode[]) {
    cases.push({ data: testRaster(w, h, MODE_CHANNELS[mode], 11 + i), mode, size: [w, h], width: ow, height: oh, filter: 'bicubic' });
  }
}
// The other filters and the 2- and 4-channel paths (Pillow's premultiplied modes, resized channel by channel).
for (const [i, [w, h, ow, oh]] of SHAPES.slice(0, 8).entries()) {
  for (const filter of ['bilinear', 'lanczos'] as const) {
    cases.push({ data: testRaster(w, h, 3, 101 + i), mode: 'RGB', size: [w, h], width: ow, height: oh, filter });
  }
}
for (const mode of ['La', 'RGBa'] as RawMode[]) {
  cases.push({ data: testRaster(67, 45, MODE_CHANNELS[mode], 7), mode, size: [67, 45], width: 30, height: 70, filter: 'bicubic' });
}

describe('image: Pillow-exact resize (addon resizeImage)', () => {
  let expected: Buffer[];
  before(() => {
    expected = pillowResize(tmpDir('matchd-resample-'), cases);
  });
  after(cleanupTmpDirs);

  for (const [n, c] of cases.entries()) {
    const [w, h] = c.size;
    const label = SHAPES.find(([a, b, d, e]) => a === w && b === h && d === c.width && e === c.height)?.[4] ?? '';
    test(`${c.filter} ${c.mode} ${w}×${h} → ${c.width}×${c.height}${label ? ` (${label})` : ''}: identical bytes`, async () => {
      const image = { data: c.data, width: w, height: h, channels: MODE_CHANNELS[c.mode] };
      const got = await addon().resizeImage(image, { width: c.width, height: c.height, filter: c.filter });
      assert.equal(got.length, c.width * c.height * MODE_CHANNELS[c.mode]);
      assert.equal(firstDifference(got, expected[n]!), null);
    });
  }

  test('the default filter is bicubic; the input is left as it was', async () => {
    const data = testRaster(50, 40, 3, 3);
    const before = Buffer.from(data);
    const a = await addon().resizeImage({ data, width: 50, height: 40, channels: 3 }, { width: 20, height: 33 });
    const b = await addon().resizeImage({ data, width: 50, height: 40, channels: 3 }, { width: 20, height: 33, filter: 'bicubic' });
    assert.deepEqual(a, b);
    assert.deepEqual(Buffer.from(data), before);
  });

  test('many resizes at once on the pool give the same bytes as one at a time', async () => {
    const data = testRaster(301, 203, 3, 5);
    const one = await addon().resizeImage({ data, width: 301, height: 203, channels: 3 }, { width: 97, height: 61 });
    const many = await Promise.all(
      Array.from({ length: 8 }, () => addon().resizeImage({ data, width: 301, height: 203, channels: 3 }, { width: 97, height: 61 })),
    );
    for (const m of many) assert.deepEqual(m, one);
  });

  describe('bad calls → MATCHD_BAD_INPUT naming the argument', () => {
    const data = new Uint8Array(4 * 3 * 3);
    const img = { data, width: 4, height: 3, channels: 3 as const };
    test('data length does not match width × height × channels', () => {
      assert.throws(() => addon().resizeImage({ ...img, width: 5 }, { width: 2, height: 2 }), withCode('MATCHD_BAD_INPUT', /image\.data holds 36 bytes but 5x3x3 needs 45/));
    });
    test('data is not a Uint8Array', () => {
      assert.throws(() => addon().resizeImage({ ...img, data: new Float32Array(36) as unknown as Uint8Array }, { width: 2, height: 2 }), withCode('MATCHD_BAD_INPUT', /image\.data must be a Uint8Array/));
    });
    test('unknown filter', () => {
      assert.throws(() => addon().resizeImage(img, { width: 2, height: 2, filter: 'nearest' as 'bicubic' }), withCode('MATCHD_BAD_INPUT', /spec\.filter must be/));
    });
    test('zero, negative, fractional or missing sizes', () => {
      for (const spec of [{ width: 0, height: 2 }, { width: 2, height: -1 }, { width: 2.5, height: 2 }, { height: 2 }]) {
        assert.throws(() => addon().resizeImage(img, spec as { width: number; height: number }), withCode('MATCHD_BAD_INPUT', /spec\.(width|height)/));
      }
    });
    test('channels outside 1..4', () => {
      assert.throws(() => addon().resizeImage({ ...img, channels: 5 as 3 }, { width: 2, height: 2 }), withCode('MATCHD_BAD_INPUT', /channels must be 1, 2, 3 or 4/));
    });
  });
});
