// The pipeline (decode → batch → encode) on the demo package's real family runtime: bounded decode-ahead, batch
// invariance, texts from concurrent callers sharing engine runs, per-item errors that never hold a batch back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openFamily, type FamilyModel, type PreparedImage } from '../../src/core/model/families/index.ts';
import { readPackage } from '../../src/core/model/package.ts';
import { limitsFrom } from '../../src/core/image/spec.ts';
import { Pipeline } from '../../src/core/pipeline.ts';
import { Matcher } from '../../src/core/matcher.ts';
import { decodesBesideEngine } from '../../src/core/cpus.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, sampleImages, samplesDir } from '../fixtures/packages.ts';

/** The demo family, instrumented: how many images are prepared but not yet encoded, and every engine call. */
function instrument(model: FamilyModel) {
  const seen = { outstanding: 0, peak: 0, imageRuns: [] as number[], textRuns: [] as string[][] };
  const wrapped: FamilyModel = {
    manifest: model.manifest,
    maxBatchCost: model.maxBatchCost,
    get provider() {
      return model.provider;
    },
    async prepareImage(input) {
      const p = await model.prepareImage(input);
      seen.peak = Math.max(seen.peak, ++seen.outstanding);
      return p;
    },
    async encodeImages(images: PreparedImage[]) {
      seen.imageRuns.push(images.length);
      const out = await model.encodeImages(images);
      seen.outstanding -= images.length;
      return out;
    },
    async encodeTexts(texts) {
      seen.textRuns.push(texts);
      return model.encodeTexts(texts);
    },
    close: () => model.close(),
  };
  return { wrapped, seen };
}

describe('pipeline: decode → batch → encode', () => {
  let model: FamilyModel;
  const files = sampleImages().map((f) => path.join(samplesDir, f));
  before(async () => {
    model = await openFamily(readPackage(demoDir), { limits: limitsFrom() });
  });
  after(() => {
    model.close();
    cleanupTmpDirs();
  });

  test('never more than decodeAhead images prepared and not yet encoded; results equal one-at-a-time', async () => {
    const { wrapped, seen } = instrument(model);
    const p = new Pipeline(wrapped, { maxBatch: 3, decodeAhead: 4, decodeConcurrency: 2, maxDelayMs: 5 });
    const inputs = Array.from({ length: 24 }, (_, i) => files[i % files.length]!);
    const batched = await p.embedImages(inputs);
    assert.ok(seen.peak <= 4, `peak ${seen.peak} > decodeAhead 4`);
    assert.ok(seen.imageRuns.every((n) => n <= 3), `a run exceeded maxBatch: ${seen.imageRuns}`);
    const single = new Pipeline(model, { maxBatch: 1 });
    for (const [i, e] of batched.entries()) {
      const alone = await single.embedImage(inputs[i]!);
      assert.ok(e.ok && alone.ok);
      for (let k = 0; k < e.vector.length; k++) assert.ok(Math.abs(e.vector[k]! - alone.vector[k]!) < 1e-6);
    }
    assert.equal(p.busy, 0);
    assert.equal(p.room, 4);
  });

  test('room tells the daemon how many images it may hand in without waiting', async () => {
    const p = new Pipeline(model, { maxBatch: 2, decodeAhead: 3 });
    assert.equal(p.room, 3);
    const running = [p.embedImage(files[0]!), p.embedImage(files[1]!)];
    assert.equal(p.room, 1);
    await Promise.all(running);
    assert.equal(p.room, 3);
  });

  test('texts from concurrent callers share one engine run; the same text is encoded once', async () => {
    const { wrapped, seen } = instrument(model);
    const p = new Pipeline(wrapped, { maxTextBatch: 8 });
    const [a, b, c] = await Promise.all([
      p.embedTexts(['red', 'blue']),
      p.embedTexts(['green', 'red']),
      p.embedTexts(['yellow']),
    ]);
    assert.deepEqual(seen.textRuns, [['red', 'blue', 'green', 'yellow']]);
    assert.deepEqual(a![0]!.vector, b![1]!.vector);
    assert.equal(c![0]!.text, 'yellow');
    await p.embedTexts(['red', 'yellow']);
    assert.equal(seen.textRuns.length, 1, 'cached texts are not encoded again');
    // The second 'red' missed the cache but shared the first one's encode.
    assert.deepEqual(p.textCacheStats, { size: 4, hits: 2, misses: 5 });
  });

  test('a bad image fails alone and a partial batch does not wait for it (maxDelayMs is an hour)', async () => {
    const dir = tmpDir();
    const bad = path.join(dir, 'bad.jpg');
    fs.writeFileSync(bad, 'not a jpeg at all');
    const { wrapped, seen } = instrument(model);
    const p = new Pipeline(wrapped, { maxBatch: 8, maxDelayMs: 3_600_000 });
    const out = await p.embedImages([files[0]!, bad, files[1]!]);
    assert.deepEqual(out.map((e) => e.ok), [true, false, true]);
    assert.equal(!out[1]!.ok && out[1]!.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.deepEqual(seen.imageRuns.reduce((a, b) => a + b, 0), 2);
  });

  /** Each decode start: how many decodes were running then (itself included) and whether an engine run was. */
  function budgetProbe(inner: FamilyModel) {
    const starts: { active: number; encoding: boolean }[] = [];
    let active = 0;
    let encoding = 0;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const wrapped: FamilyModel = {
      ...inner,
      manifest: inner.manifest,
      maxBatchCost: inner.maxBatchCost,
      provider: inner.provider,
      async prepareImage(input) {
        starts.push({ active: ++active, encoding: encoding > 0 });
        try {
          await sleep(8);
          return await inner.prepareImage(input);
        } finally {
          active--;
        }
      },
      async encodeImages(images) {
        encoding++;
        try {
          await sleep(40);
          return await inner.encodeImages(images);
        } finally {
          encoding--;
        }
      },
      encodeTexts: (t) => inner.encodeTexts(t),
      close: () => inner.close(),
    };
    return { wrapped, starts };
  }

  for (const beside of [1, 0]) {
    test(`decodes keep to their budget: 3 between engine runs, ${beside} while one is in progress`, async () => {
      const { wrapped, starts } = budgetProbe(model);
      const p = new Pipeline(wrapped, { maxBatch: 4, decodeAhead: 12, decodeConcurrency: 3, decodeWhileEncoding: beside, maxDelayMs: 5 });
      const results = await p.embedImages(Array.from({ length: 24 }, (_, i) => files[i % files.length]!));
      assert.ok(results.every((r) => r.ok));
      const during = starts.filter((s) => s.encoding);
      const between = starts.filter((s) => !s.encoding);
      assert.ok(during.every((s) => s.active <= beside), `a decode started beside a run with ${Math.max(...during.map((s) => s.active))} running`);
      if (beside > 0) assert.ok(during.length > 0, 'decodes were allowed beside a run but none started there');
      assert.equal(Math.max(...between.map((s) => s.active)), 3, 'between runs every decode slot is used');
    });
  }

  test('Matcher.open gives decodes the cores the engine leaves free while it runs', async () => {
    for (const intraOpThreads of [0, 1]) {
      const m = await Matcher.open(demoDir, { engine: { intraOpThreads }, decodeConcurrency: 2 });
      assert.equal(m.pipeline.decodeWhileEncoding, Math.min(2, decodesBesideEngine('cpu', intraOpThreads)));
      m.close();
    }
    const explicit = await Matcher.open(demoDir, { decodeConcurrency: 2, decodeWhileEncoding: 2 });
    assert.equal(explicit.pipeline.decodeWhileEncoding, 2);
    explicit.close();
  });
});
