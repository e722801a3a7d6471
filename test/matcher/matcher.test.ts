// The matcher on the demo package: colour ranking, batch = one-by-one, text cache, text edge cases, per-item errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MatchdError } from '../../src/core/errors.ts';
import { Matcher } from '../../src/core/matcher.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoCopy, demoDir, sampleImages, samplesDir } from '../fixtures/packages.ts';

const sample = (name: string) => path.join(samplesDir, name);
const COLOURS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white', 'grey', 'black'];
const code = (c: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof MatchdError && e.code === c && (!pattern || pattern.test(e.message));

describe('matcher: demo model', () => {
  let matcher: Matcher;
  before(async () => {
    matcher = await Matcher.open(demoDir);
  });
  after(() => {
    matcher.close();
    cleanupTmpDirs();
  });

  test('red sample: "a red object" ranks first with band adopt, blue is rejected', async () => {
    const [red, blue] = await matcher.score(sample('red.jpg'), ['a red object', 'a blue object']);
    assert.equal(red!.text, 'a red object');
    assert.ok(red!.cosine > blue!.cosine);
    assert.equal(red!.band, 'adopt');
    assert.equal(blue!.band, 'reject');
    assert.ok(red!.score >= 0 && red!.score <= 1);
    assert.equal(red!.truncated, false);
  });

  test('each sample\'s best colour word is its own colour', async () => {
    const expected: Record<string, string> = { 'red.jpg': 'red', 'blue.png': 'blue', 'green.webp': 'green', 'yellow.jpg': 'yellow' };
    for (const [file, colour] of Object.entries(expected)) {
      const results = await matcher.score(sample(file), COLOURS.map((c) => `a ${c} thing`));
      const best = results.reduce((a, b) => (b.cosine > a.cosine ? b : a));
      assert.equal(best.text, `a ${colour} thing`, `${file}: best was ${best.text}`);
    }
    const split = await matcher.score(sample('orange-and-black.png'), ['orange', 'black', 'blue']);
    assert.ok(split[0]!.cosine > 0.4 && split[1]!.cosine > 0.4, 'both halves count');
    assert.ok(split[2]!.cosine < 0.1);
  });

  test('the batch path returns the same scores as one image at a time', async () => {
    const files = sampleImages().map(sample);
    const batched = await matcher.embedImages(files);
    for (let i = 0; i < files.length; i++) {
      const [single] = await matcher.embedImages([files[i]!]);
      assert.ok(batched[i]!.ok && single!.ok);
      const a = (batched[i] as { vector: Float32Array }).vector;
      const b = (single as { vector: Float32Array }).vector;
      for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k]! - b[k]!) < 1e-6, `${files[i]} dim ${k}`);
    }
    const pairs = await matcher.scoreMany(files.map((image) => ({ image, texts: ['red', 'blue'] })));
    for (let i = 0; i < files.length; i++) {
      const one = await matcher.score(files[i]!, ['red', 'blue']);
      assert.ok(pairs[i]!.ok);
      const many = (pairs[i] as { results: { cosine: number }[] }).results;
      many.forEach((r, k) => assert.ok(Math.abs(r.cosine - one[k]!.cosine) < 1e-6));
    }
  });

  test('batches larger than maxBatch are split and stay in order', async () => {
    const small = await Matcher.open(demoDir, { maxBatch: 2 });
    const files = ['red.jpg', 'blue.png', 'green.webp', 'yellow.jpg', 'red.jpg'].map(sample);
    const got = await small.embedImages(files);
    const want = await matcher.embedImages(files);
    got.forEach((g, i) => {
      assert.ok(g.ok && want[i]!.ok);
      assert.deepEqual(Array.from((g as { vector: Float32Array }).vector), Array.from((want[i] as { vector: Float32Array }).vector));
    });
    small.close();
  });

  test('cached and uncached text embeddings agree; repeats hit the cache', async () => {
    const texts = ['a pink scarf', 'a grey cat', 'a pink scarf'];
    const before = matcher.textCacheStats;
    const first = await matcher.embedTexts(texts);
    const second = await matcher.embedTexts(texts);
    const fresh = await matcher.embedTexts(texts, { cache: false });
    assert.ok(matcher.textCacheStats.hits >= before.hits + 3);
    for (let i = 0; i < texts.length; i++) {
      assert.deepEqual(Array.from(second[i]!.vector), Array.from(first[i]!.vector));
      assert.deepEqual(Array.from(fresh[i]!.vector), Array.from(first[i]!.vector));
    }
    assert.equal(first[0]!.vector, first[2]!.vector, 'a repeated text is encoded once');
  });

  test('one bad image never fails the rest (per-item codes)', async () => {
    const dir = tmpDir();
    const notImage = path.join(dir, 'notes.jpg');
    fs.writeFileSync(notImage, 'just some text, not a JPEG\n');
    const empty = path.join(dir, 'empty.png');
    fs.writeFileSync(empty, '');
    const results = await matcher.scoreMany([
      { image: sample('red.jpg'), texts: ['red'] },
      { image: notImage, texts: ['red'] },
      { image: empty, texts: ['red'] },
      { image: path.join(dir, 'missing.jpg'), texts: ['red'] },
      { image: sample('blue.png'), texts: ['blue'] },
      { image: sample('blue.png'), texts: [''] },
    ]);
    assert.ok(results[0]!.ok && results[4]!.ok);
    assert.equal((results[1] as { error: MatchdError }).error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal((results[2] as { error: MatchdError }).error.code, 'MATCHD_IMAGE_DECODE');
    assert.equal((results[3] as { error: MatchdError }).error.code, 'MATCHD_IMAGE_DECODE');
    assert.equal((results[5] as { error: MatchdError }).error.code, 'MATCHD_TEXT_INVALID');
    await assert.rejects(matcher.score(notImage, ['red']), code('MATCHD_IMAGE_UNSUPPORTED'));
  });

  test('text edge cases: empty, whitespace, zero texts, lone surrogate → MATCHD_TEXT_INVALID', async () => {
    await assert.rejects(matcher.embedTexts(['']), code('MATCHD_TEXT_INVALID', /empty text/));
    await assert.rejects(matcher.embedTexts(['red', '   \t']), code('MATCHD_TEXT_INVALID', /text 1: empty/));
    await assert.rejects(matcher.embedTexts([]), code('MATCHD_TEXT_INVALID', /at least one text/));
    await assert.rejects(matcher.score(sample('red.jpg'), []), code('MATCHD_TEXT_INVALID'));
    await assert.rejects(matcher.embedTexts(['red \uD800 car']), code('MATCHD_TEXT_INVALID', /lone surrogate/));
  });

  test('a text over the model limit is truncated and flagged, and still scored', async () => {
    const long = Array(100).fill('red').join(' ');
    const [r] = await matcher.score(sample('red.jpg'), [long]);
    assert.equal(r!.truncated, true);
    assert.equal(r!.band, 'adopt');
    const [short] = await matcher.score(sample('red.jpg'), ['red']);
    assert.equal(short!.truncated, false);
  });

  test('text with no colour word matches no image (cosine 0), non-ASCII text is fine', async () => {
    const [r, u] = await matcher.score(sample('red.jpg'), ['a photo of something', 'ein rotes Ding 🚗 red']);
    assert.ok(Math.abs(r!.cosine) < 1e-6);
    assert.equal(r!.band, 'reject');
    assert.ok(u!.cosine > 0.3);
  });

  test('bands and range from options override the manifest', async () => {
    const strict = await Matcher.open(demoDir, {
      range: [0.5, 1],
      bands: { on: 'score', list: [{ name: 'keep', min: 0.9 }, { name: 'drop' }] },
    });
    const [r] = await strict.score(sample('red.jpg'), ['a red object']);
    assert.equal(r!.score, Math.max(0, Math.min(1, (r!.cosine - 0.5) / 0.5)));
    assert.equal(r!.band, r!.score >= 0.9 ? 'keep' : 'drop');
    strict.close();
  });
});

describe('matcher: package checked against the ONNX files', () => {
  after(cleanupTmpDirs);

  test('every mismatch between manifest and models is listed in one MATCHD_MODEL_INVALID', async () => {
    const dir = demoCopy((m) => {
      m.image.input = 'pixels';
      m.image.size = { width: 64, height: 32 };
      m.embeddingSize = 12;
      m.text.dtype = 'int32';
      delete m.text.attentionMask;
      m.text.output = 'embeds';
    });
    await assert.rejects(Matcher.open(dir), (e: unknown) => {
      assert.ok(e instanceof MatchdError && e.code === 'MATCHD_MODEL_INVALID', String(e));
      for (const p of [
        /image\.input: the image model has no input 'pixels' \(it has: pixel_values\)/,
        /image\.output: .* has 11 dims but embeddingSize is 12/,
        /text\.dtype: manifest says int32 but input 'input_ids' is int64/,
        /text\.model: input 'attention_mask' is not fed/,
        /text\.output: the text model has no output 'embeds'/,
      ]) assert.match(e.message, p);
      return true;
    });
  });

  test('a fixed image size in the model must match the manifest', async () => {
    // The demo image model is fixed at 32×32.
    const dir = demoCopy((m) => (m.image.size = { width: 64, height: 32 }));
    await assert.rejects(Matcher.open(dir), code('MATCHD_MODEL_INVALID', /image\.size\.width: manifest says 64 but the model takes 32/));
  });

  test('a broken tokenizer.json → MATCHD_MODEL_INVALID', async () => {
    const dir = demoCopy();
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"not": "a tokenizer"}');
    await assert.rejects(Matcher.open(dir), code('MATCHD_MODEL_INVALID', /tokenizer/));
  });

  test('the query instruction and template are applied to texts', async () => {
    const plain = await Matcher.open(demoDir);
    const gme = await Matcher.open(demoCopy((m) => {
      m.text.query = { instruction: 'Find an image that matches the given text.', template: '{instruction} {text}' };
    }));
    const [a] = await plain.score(sample('red.jpg'), ['red']);
    const [b] = await gme.score(sample('red.jpg'), ['red']);
    // The instruction's words are not colours: they dilute the query, so the cosine drops but stays positive.
    assert.ok(b!.cosine < a!.cosine - 0.05 && b!.cosine > 0, `${b!.cosine} vs ${a!.cosine}`);
    plain.close();
    gme.close();
  });
});
