// Both smart_resize stages against the Python reference (Python's round/floor/ceil on doubles), over a table of
// sizes computed by Python at test time, plus hand-checked values.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MatchdError } from '../../src/core/errors.ts';
import { GME_IMAGE_DEFAULTS as S } from '../../src/core/model/families/gme-qwen2-vl/preprocess.ts';
import { fetchSize, processorSize, roundHalfEven, smartResize } from '../../src/core/model/families/gme-qwen2-vl/smart-resize.ts';
import { referenceSizes, type SizeCase } from '../fixtures/pillow.ts';

const F = 28;

/** [height, width] pairs: ties, clamps, extremes, photo sizes, and a sweep. */
function sizes(): [number, number][] {
  const list: [number, number][] = [
    // x/28 exactly .5: Python rounds to even (14 → 0 → one factor, 42 → 2, 70 → 2, 98 → 4, 126 → 4, 154 → 6)
    [14, 14], [42, 42], [70, 70], [98, 98], [126, 126], [154, 154], [70, 98], [182, 210],
    // under the minimum (scaled up, ceil) and far over the maximum (scaled down, floor)
    [1, 1], [5, 9], [27, 27], [28, 28], [29, 29], [56, 56], [100, 80], [224, 224],
    [3024, 4032], [4032, 3024], [6000, 8000], [9000, 12000], [1080, 1920], [1500, 2000], [2448, 3264],
    // the processor's range edges: 448×448 = 200704 exactly, 1120×896 = 1003520 exactly
    [448, 448], [447, 449], [1120, 896], [1121, 896], [896, 1120],
    // thin images: GME clamps the ratio (no error), the processor raises; 28×5600 is exactly 200
    [1, 300], [300, 1], [10, 6000], [6000, 10], [28, 5600], [28, 5628], [5628, 28], [56, 11200], [1, 50000],
    // where the order of Python's double operations decides a floor/ceil (h / beta / f ≠ h / (beta·f))
    [3159, 5616], [3600, 6400], [36, 64], [38, 38], [46, 46], [56, 350], [4, 144], [7, 175],
    // so thin that a side floors to 0 over fetchMaxPixels: the reference divides by zero
    [28, 460000], [460000, 28],
  ];
  // a sweep over odd sizes and ratios
  for (let h = 3; h < 5000; h = Math.floor(h * 1.37) + 5) for (let w = 7; w < 7000; w = Math.floor(w * 1.61) + 3) list.push([h, w]);
  return list;
}

describe('gme-qwen2-vl: smart_resize', () => {
  test('roundHalfEven is Python round()', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4999999999999996, 2.5000000000000004, 7].map(roundHalfEven), [0, 2, 2, 4, 0, -2, 2, 3, 7]);
  });

  test('hand-checked values', () => {
    assert.deepEqual(smartResize(70, 70, 28, 56 * 56, 28 * 28 * 1280), [56, 56]);
    assert.deepEqual(smartResize(98, 98, 28, 56 * 56, 28 * 28 * 1280), [112, 112]);
    assert.deepEqual(fetchSize(10, 6000, S), [28, 5600], 'ratio 214 clamped to 200');
    assert.deepEqual(processorSize(28, 5600, S), [56, 6356]);
    assert.deepEqual(processorSize(3024, 4032, S), [840, 1148], 'a 12 MP photo: 30 × 41 merged tokens');
    assert.deepEqual(fetchSize(3024, 4032, S), [3024, 4032], 'already a multiple of 28 and under the fetch maximum');
    assert.deepEqual(processorSize(112, 112, S), [448, 448]);
  });

  test('fetch_image sizes equal the reference for every case (or both refuse)', () => {
    const list = sizes();
    const want = referenceSizes(list.map(([h, w]): SizeCase => [h, w, F, S.fetchMinPixels, S.fetchMaxPixels, 'fetch']));
    let refused = 0;
    for (const [i, [h, w]] of list.entries()) {
      const ref = want[i]!;
      if (Array.isArray(ref)) {
        assert.deepEqual(fetchSize(h, w, S), ref, `fetchSize(${h}, ${w})`);
      } else {
        refused++;
        assert.match(ref.error, /ZeroDivisionError/);
        assert.throws(() => fetchSize(h, w, S), (e: unknown) => e instanceof MatchdError && e.code === 'MATCHD_IMAGE_ASPECT', `fetchSize(${h}, ${w})`);
      }
    }
    assert.equal(refused, 2, 'the two slivers');
    assert.ok(list.length > 150, `${list.length} cases`);
  });

  test("the processor's sizes equal the reference for every fetched size, and its refusals are MATCHD_IMAGE_ASPECT", () => {
    // The processor sees fetched sizes; the raw list adds sides under 28 and ratios over 200, where it raises.
    const list = [...sizes().filter(([h, w]) => h * w < 12e6).map(([h, w]) => fetchSize(h, w, S)), ...sizes()];
    const want = referenceSizes(list.map(([h, w]): SizeCase => [h, w, F, S.minPixels, S.maxPixels, 'processor']));
    let raised = 0;
    for (const [i, [h, w]] of list.entries()) {
      const ref = want[i]!;
      if (Array.isArray(ref)) {
        assert.deepEqual(processorSize(h, w, S), ref, `processorSize(${h}, ${w})`);
        const [ph, pw] = ref;
        assert.ok(ph % F === 0 && pw % F === 0 && ph * pw >= S.minPixels && ph * pw <= S.maxPixels, `${ph}×${pw} in range`);
      } else {
        raised++;
        assert.match(ref.error, /ValueError/);
        assert.throws(() => processorSize(h, w, S), (e: unknown) => e instanceof MatchdError && e.code === 'MATCHD_IMAGE_ASPECT', `processorSize(${h}, ${w})`);
      }
    }
    assert.ok(raised >= 10, `${raised} refusals exercised`);
  });

  test('aspect ratio over 200 at the processor → MATCHD_IMAGE_ASPECT naming the ratio; exactly 200 passes', () => {
    assert.throws(() => processorSize(28, 5628, S), (e: unknown) => e instanceof MatchdError && e.code === 'MATCHD_IMAGE_ASPECT' && /5628×28 has an aspect ratio of 201\.00, over the model's limit of 200/.test(e.message));
    assert.doesNotThrow(() => processorSize(28, 5600, S));
  });
});
