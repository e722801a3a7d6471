// Score mappings: linear over a cosine range (the default, and a rule's `range` override) and SigLIP's sigmoid.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Bands } from '../../src/core/model/manifest.ts';
import { l2normalize, mapScore, scoreTexts } from '../../src/core/scoring.ts';

const bands: Bands = { on: 'score', list: [{ name: 'adopt', min: 0.5 }, { name: 'review', min: 0.1 }, { name: 'reject' }] };

describe('score mapping', () => {
  test('linear: 0 at lo, 1 at hi, clamped outside', () => {
    const m = { mapping: 'linear', range: [0.2, 0.3] as [number, number] } as const;
    assert.ok(Math.abs(mapScore(0.25, m) - 0.5) < 1e-12);
    assert.equal(mapScore(0.1, m), 0);
    assert.equal(mapScore(0.9, m), 1);
  });

  test('sigmoid: sigmoid(logitScale · cos + logitBias), exact at the midpoint, no overflow in either tail', () => {
    const m = { mapping: 'sigmoid', logitScale: 117.33, logitBias: -12.93 } as const;
    const mid = 12.93 / 117.33;
    assert.ok(Math.abs(mapScore(mid, m) - 0.5) < 1e-12);
    assert.ok(Math.abs(mapScore(0.2, m) - 1 / (1 + Math.exp(-(117.33 * 0.2 - 12.93)))) < 1e-12);
    const huge = { mapping: 'sigmoid', logitScale: 1e6, logitBias: 0 } as const;
    assert.equal(mapScore(1, huge), 1);
    assert.equal(mapScore(-1, huge), 0);
    assert.ok(Number.isFinite(mapScore(-1, huge)));
  });

  test('scoreTexts: a mapping, or a bare [lo, hi] meaning linear (a rule range override); bands on the score', () => {
    const image = l2normalize(Float32Array.from([1, 0, 0]));
    const texts = [
      { text: 'close', vector: l2normalize(Float32Array.from([0.98, 0.2, 0])), truncated: false },
      { text: 'far', vector: l2normalize(Float32Array.from([0, 1, 0])), truncated: true },
    ];
    const sig = scoreTexts(image, texts, { mapping: 'sigmoid', logitScale: 10, logitBias: -5 }, bands);
    assert.equal(sig[0]!.band, 'adopt');
    assert.ok(Math.abs(sig[0]!.score - 1 / (1 + Math.exp(-(10 * sig[0]!.cosine - 5)))) < 1e-9);
    assert.equal(sig[1]!.band, 'reject');
    assert.equal(sig[1]!.truncated, true);
    const lin = scoreTexts(image, texts, [0, 1], bands);
    assert.ok(Math.abs(lin[0]!.score - lin[0]!.cosine) < 1e-9);
    assert.deepEqual(lin, scoreTexts(image, texts, { mapping: 'linear', range: [0, 1] }, bands));
  });
});
