// Tokenisation with the tokenizers package from tokenizer.json: round trip, padding, truncation flags.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { DualEncoderManifest } from '../../src/core/model/manifest.ts';
import { readPackage } from '../../src/core/model/package.ts';
import { TextTokenizer, buildQuery } from '../../src/core/model/tokenizer.ts';
import { demoDir } from '../fixtures/packages.ts';

describe('model package: tokenizer', () => {
  const raw = readPackage(demoDir);
  const pkg = { tokenizer: raw.files['text.tokenizer']!, manifest: raw.manifest as DualEncoderManifest };
  const tok = TextTokenizer.load(pkg.tokenizer, pkg.manifest.text);

  test('round trip: text → ids → text (lower-cased, unknown words as [UNK] are dropped as special)', async () => {
    assert.deepEqual(await tok.tokens('A Red, blue object'), ['[UNK]', 'red', '[UNK]', 'blue', '[UNK]']);
    const batch = await tok.encode(['Red blue green']);
    const ids = Array.from(batch.ids as BigInt64Array, Number);
    assert.equal(await tok.decode(ids), 'red blue green');
  });

  test('padding to the longest text with padId and a zero attention mask', async () => {
    const b = await tok.encode(['red', 'red blue green']);
    assert.deepEqual(b.dims, [2, 3]);
    assert.ok(b.ids instanceof BigInt64Array);
    assert.deepEqual(Array.from(b.mask as BigInt64Array, Number), [1, 0, 0, 1, 1, 1]);
    assert.equal((b.ids as BigInt64Array)[1], 0n);
    assert.deepEqual(b.truncated, [false, false]);
  });

  test('max_length padding and int32 ids when the manifest says so', async () => {
    const t = TextTokenizer.load(pkg.tokenizer, { ...pkg.manifest.text, padding: 'max_length', maxLength: 6, dtype: 'int32' });
    const b = await t.encode(['red']);
    assert.deepEqual(b.dims, [1, 6]);
    assert.ok(b.ids instanceof Int32Array);
  });

  test('texts over maxLength are cut to it and flagged', async () => {
    const b = await tok.encode([Array(40).fill('red').join(' '), 'red']);
    assert.deepEqual(b.dims, [2, pkg.manifest.text.maxLength]);
    assert.deepEqual(b.truncated, [true, false]);
  });

  test('query template with instruction', () => {
    const spec = { ...pkg.manifest.text, query: { instruction: 'Find an image that matches the given text.', template: '{instruction} {text}' } };
    assert.equal(buildQuery('a red car', spec), 'Find an image that matches the given text. a red car');
    assert.equal(buildQuery('a red car', pkg.manifest.text), 'a red car');
  });

  test('a missing tokenizer file → MATCHD_MODEL_INVALID', () => {
    assert.throws(() => TextTokenizer.load(path.join(demoDir, 'nope.json'), pkg.manifest.text), (e: any) => e.code === 'MATCHD_MODEL_INVALID');
  });
});
