// The statistics behind `matchd calibrate` on hand-made values: AUC with ties, the adopt / reject thresholds against
// counts worked out by hand, thresholds placed between observed values, a seeded bootstrap that repeats exactly and
// narrows with more data, and the proposal's bands (names kept, review zone, range) with its warnings.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { analyse } from '../../src/core/calibrate/analyse.ts';
import { between, bootstrap, prCurve, rocAuc, seeded, thresholds, type Labelled } from '../../src/core/calibrate/stats.ts';

const L = (match: number[], noMatch: number[]): Labelled[] => [...match.map((value) => ({ value, match: true })), ...noMatch.map((value) => ({ value, match: false }))];
const DEMO_BANDS = { on: 'cosine' as const, list: [{ name: 'adopt', min: 0.4 }, { name: 'review', min: 0.3 }, { name: 'improve', min: 0.2 }, { name: 'reject' }] };

describe('calibrate: statistics', () => {
  test('ROC AUC: 1 when separated, 0.5 when all tied, ties count half, NaN without both classes', () => {
    assert.equal(rocAuc(L([0.8, 0.9], [0.1, 0.2])), 1);
    assert.equal(rocAuc(L([0.5, 0.5], [0.5, 0.5])), 0.5);
    // pairs (m, n): (0.6, 0.4) ✓, (0.6, 0.6) ½, (0.3, 0.4) ✗, (0.3, 0.6) ✗ → 1.5 / 4
    assert.equal(rocAuc(L([0.6, 0.3], [0.4, 0.6])), 0.375);
    assert.ok(Number.isNaN(rocAuc(L([0.5], []))));
  });

  test('precision / recall per distinct value, highest first', () => {
    const c = prCurve(L([0.9, 0.7, 0.5], [0.8, 0.3]));
    assert.deepEqual(c.map((p) => [p.threshold, p.tp, p.fp]), [[0.9, 1, 0], [0.8, 1, 1], [0.7, 2, 1], [0.5, 3, 1], [0.3, 3, 2]]);
    assert.equal(c[2]!.precision, 2 / 3);
    assert.equal(c[3]!.recall, 1);
  });

  test('a threshold between two observed values: a short decimal in the gap, never past either value', () => {
    assert.equal(between(0.31, 0.39), 0.35);
    assert.equal(between(0.3512, 0.3518), 0.3515);
    assert.equal(between(undefined, 0.42), 0.42);
    const t = between(0.123456, 0.123457);
    assert.ok(t > 0.123456 && t <= 0.123457);
  });

  test('adopt: the lowest threshold with the precision; reject: the highest keeping the recall', () => {
    // 10 matches 0.50..0.95, 10 non-matches 0.05..0.50 (one at 0.45 among the matches' lows)
    const m = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];
    const n = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.52];
    const t = thresholds(L(m, n), 0.9, 0.9);
    // ≥ 0.5: 10 matches + 1 (0.52) → precision 10/11 = 0.909 ≥ 0.9; ≥ 0.45 adds one more → 10/12 < 0.9
    assert.equal(t.adopt, 0.48);
    assert.equal(t.adoptPrecision, 10 / 11);
    // recall ≥ 0.9: 9 of 10 matches → the highest threshold is 0.55, placed at 0.54 between 0.52 and 0.55: above
    // the adopt threshold, so there is no review zone and reject falls to adopt (recall is then 10 of 10)
    assert.equal(t.overlap, true);
    assert.equal(t.reject, 0.48);
    assert.equal(t.rejectRecall, 1);
    const strict = thresholds(L(m, n), 0.99, 0.95);
    assert.equal(strict.adopt, 0.54, 'only above the 0.52 non-match is precision 1: between 0.52 and 0.55');
    assert.ok(strict.reject > 0.45 && strict.reject <= 0.5, '10 of 10 matches at or above 0.5: between 0.45 and 0.5');
    assert.equal(strict.overlap, false);
    assert.equal(strict.rejectRecall, 1);
    const sep = thresholds(L([0.7, 0.8, 0.9], [0.1, 0.2]), 0.95, 0.95);
    assert.deepEqual([sep.adopt, sep.reject, sep.overlap], [0.45, 0.45, false]);
  });

  test('bootstrap: the same seed gives the same intervals; more data, narrower intervals', () => {
    const r = seeded(42);
    const gen = (k: number) => L(Array.from({ length: k }, () => 0.3 + 0.3 * r()), Array.from({ length: k }, () => 0.1 + 0.3 * r()));
    const small = gen(20);
    const a = bootstrap(small, 0.95, 0.95, 300, seeded(7));
    const b = bootstrap(small, 0.95, 0.95, 300, seeded(7));
    assert.deepEqual(a, b);
    const big = bootstrap(gen(2000), 0.95, 0.95, 300, seeded(7));
    assert.ok(big.reject.high - big.reject.low < (a.reject.high - a.reject.low) / 2);
    assert.ok(big.auc.low > 0.9 && big.auc.high < 0.97);
  });

  test('the proposal keeps the band names, drops what it cannot place, proposes a range, warns about small sets', () => {
    const r = seeded(3);
    const xs = L(Array.from({ length: 12 }, () => 0.3 + 0.25 * r()), Array.from({ length: 40 }, () => 0.05 + 0.35 * r()));
    const c = analyse(xs, { adoptPrecision: 0.95, rejectRecall: 0.95, on: 'cosine', bands: DEMO_BANDS, proposeRange: true, rounds: 200, seed: 1, minPerClass: 30 });
    assert.deepEqual(c.proposal.bands.list.map((b) => b.name), ['adopt', 'review', 'reject']);
    assert.deepEqual(c.proposal.dropped, ['improve']);
    assert.ok(c.proposal.range![0] < c.proposal.range![1]);
    assert.ok(c.warnings.some((w) => /only 12 match example\(s\) \(at least 30 recommended\): label 18 more/.test(w)), c.warnings.join('\n'));
    assert.ok(!c.warnings.some((w) => /no-match example/.test(w)), '40 non-matches are enough');
    assert.ok(c.warnings.some((w) => /no place for band\(s\) improve/.test(w)));
    const marked = analyse(xs, {
      adoptPrecision: 0.95, rejectRecall: 0.95, on: 'score', proposeRange: false, rounds: 0, seed: 1, minPerClass: 5,
      bands: { on: 'score', list: [{ name: 'yes', min: 0.6 }, { name: 'check', min: 0.3, review: true }, { name: 'no' }] },
    });
    assert.deepEqual(marked.proposal.bands.list.map((b) => [b.name, b.review]), [['yes', undefined], ['check', true], ['no', undefined]]);
    assert.equal(marked.proposal.range, undefined);
    assert.equal(marked.bootstrap, undefined);
  });
});
