// The GME family end to end, through matchd's public Matcher (and its CLI), on a tiny random checkpoint imported with
// `matchd model import`: images of different sizes and aspect ratios and texts of several lengths, in mixed batches,
// against tools/gme/reference.py (an independent PyTorch forward) fed with tools/gme/preprocess_reference.py's pixels
// (Pillow + numpy) and the prompts built as plain strings (test/fixtures/gme.ts), not by the runtime's own code.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { loadConfig } from '../../src/core/config.ts';
import { Daemon } from '../../src/core/daemon.ts';
import { silentLogger } from '../../src/core/log.ts';
import { Matcher } from '../../src/core/matcher.ts';
import { builtinRegistry } from '../../src/plugins/index.ts';
import { listFiles, waitFor, workspace } from '../fixtures/daemon.ts';
import { GmePrompts } from '../../src/core/model/families/gme-qwen2-vl/prompt.ts';
import { readPackage } from '../../src/core/model/package.ts';
import {
  cosine, gmeTools, importPackage, makeCheckpoint, matchd, prompt, python, readNpyFloat32, runReference, tokenize, writeNpy,
} from '../fixtures/gme.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

/** Width × height: small (upscaled to the 256-token minimum), wide, tall, a sliver, a photo, one at the 1280 cap. */
const SIZES: [number, number][] = [[64, 64], [300, 200], [120, 500], [900, 90], [640, 480], [1100, 1000]];
const TEXTS = [
  'cat',
  'a red cat on a blue mat',
  'Find the photo where a small dog with a long tail sits next to a green car, under a tree, in the rain, at night',
  'Ünïcödé and digits 12345',
];

/** A smooth gradient with some structure, so that different images embed differently. */
async function gradient(file: string, w: number, h: number, seed: number): Promise<void> {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = (x * 255 / w + seed * 40) % 256;
      data[i + 1] = (y * 255 / h + seed * 70) % 256;
      data[i + 2] = ((x + y) * 3 + seed * 90) % 256;
    }
  }
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

describe('gme: the family runtime against the PyTorch reference', () => {
  let work: string;
  let pkg: string;
  let matcher: Matcher;
  let images: string[];
  const reference: { images: Float32Array[]; texts: Float32Array[] } = { images: [], texts: [] };

  before(async () => {
    work = tmpDir('matchd-gme-runtime-');
    const ckpt = makeCheckpoint(path.join(work, 'ckpt'), { seed: 21 });
    pkg = importPackage(ckpt, path.join(work, 'pkg'));
    images = [];
    for (const [i, [w, h]] of SIZES.entries()) {
      images.push(path.join(work, `img${i}.png`));
      await gradient(images.at(-1)!, w, h, i);
    }
    // Pixels by the Pillow + numpy reference; prompts as plain strings; one mixed batch through reference.py.
    const pre = path.join(work, 'pre');
    const r = spawnSync(python, [path.join(gmeTools, 'preprocess_reference.py'), 'process', '--exif-transpose', '--out', pre, ...images], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(fs.readFileSync(path.join(pre, 'result.json'), 'utf8')) as { grid: [number, number, number] }[];
    const tokens = info.map((x) => (x.grid[1] * x.grid[2]) / 4);
    const inputs = path.join(work, 'ref-in');
    fs.mkdirSync(inputs);
    const t = await tokenize(path.join(pkg, 'tokenizer.json'), [...tokens.map((n) => prompt({ image: n })), ...TEXTS.map((text) => prompt({ text }))]);
    writeNpy(path.join(inputs, 'input_ids.npy'), t.ids, t.dims);
    writeNpy(path.join(inputs, 'attention_mask.npy'), t.mask, t.dims);
    const pixels = info.map((_, n) => new Float32Array(fs.readFileSync(path.join(pre, `${n}.pixel_values.f32`)).buffer.slice(0)));
    const all = new Float32Array(pixels.reduce((s, p) => s + p.length, 0));
    pixels.reduce((at, p) => (all.set(p, at), at + p.length), 0);
    writeNpy(path.join(inputs, 'pixel_values.npy'), all, [all.length / 1176, 1176]);
    writeNpy(path.join(inputs, 'image_grid_thw.npy'), BigInt64Array.from(info.flatMap((x) => x.grid.map(BigInt))), [info.length, 3]);
    runReference(ckpt, [{ inputs, out: path.join(work, 'ref.npy') }]);
    const { data, shape } = readNpyFloat32(path.join(work, 'ref.npy'));
    const rows = Array.from({ length: shape[0]! }, (_, b) => data.slice(b * shape[1]!, (b + 1) * shape[1]!));
    reference.images = rows.slice(0, images.length);
    reference.texts = rows.slice(images.length);
    matcher = await Matcher.open(pkg, { maxBatch: 8 });
  });

  after(() => {
    matcher?.close();
    cleanupTmpDirs();
  });

  test('images of six sizes in one batched call and texts of four lengths: cos >= 0.99999 with the reference', async () => {
    const [embedded, texts] = await Promise.all([matcher.embedImages(images), matcher.embedTexts(TEXTS)]);
    embedded.forEach((e, i) => {
      assert.ok(e.ok, `image ${i}: ${!e.ok && e.error.message}`);
      const c = cosine(e.vector, reference.images[i]!);
      assert.ok(c >= 0.99999, `image ${SIZES[i]}: cos ${c}`);
    });
    texts.forEach((t, i) => {
      const c = cosine(t.vector, reference.texts[i]!);
      assert.ok(c >= 0.99999, `text ${JSON.stringify(TEXTS[i])}: cos ${c}`);
      assert.equal(t.truncated, false);
    });
  });

  test('an image alone equals the same image inside a batch; a text alone equals it padded beside a long one', async () => {
    const alone = await Matcher.open(pkg, { maxBatch: 1, textCacheSize: 0, maxTextBatch: 1 });
    try {
      const batched = await matcher.embedImages(images);
      for (const [i, file] of images.entries()) {
        const [one] = await alone.embedImages([file]);
        assert.ok(one!.ok && batched[i]!.ok);
        assert.ok(cosine(one!.vector, batched[i]!.vector) >= 0.99999, `image ${i}`);
      }
      const padded = await matcher.embedTexts(TEXTS, { cache: false });
      for (const [i, text] of TEXTS.entries()) {
        const [one] = await alone.embedTexts([text]);
        assert.ok(cosine(one!.vector, padded[i]!.vector) >= 0.99999, `text ${i}`);
      }
    } finally {
      alone.close();
    }
  });

  test('prompt token ids equal the hand-checked sequences of the reference template', async () => {
    const m = readPackage(pkg).manifest;
    assert.equal(m.family, 'gme-qwen2-vl');
    if (m.family !== 'gme-qwen2-vl') return;
    const prompts = await GmePrompts.load(path.join(pkg, 'tokenizer.json'), m.gme.text, 'gme');
    // <|im_start|> system \n Find an image that matches the given text . <|im_end|> \n <|im_start|> user \n
    // a red cat <|im_end|> \n <|im_start|> assistant \n <|endoftext|>   (tiny tokenizer's vocabulary, Qwen2's special ids)
    const [text] = await prompts.texts(['a red cat']);
    assert.deepEqual(text!.ids, [151644, 260, 198, 274, 276, 281, 285, 292, 293, 298, 301, 13, 151645, 198, 151644, 263, 198, 64, 315, 318, 151645, 198, 151644, 271, 198, 151643]);
    // ... system \n You are a helpful assistant . <|im_end|> \n <|im_start|> user \n <|vision_start|> 2 × <|image_pad|>
    // <|vision_end|> <|im_end|> \n <|im_start|> assistant \n <|endoftext|>
    assert.deepEqual(prompts.image(2).ids, [151644, 260, 198, 303, 305, 275, 312, 220, 271, 13, 151645, 198, 151644, 263, 198, 151652, 151655, 151655, 151653, 151645, 198, 151644, 271, 198, 151643]);
    // The prefix/suffix shortcut gives what tokenising the whole expanded prompt gives.
    const whole = await tokenize(path.join(pkg, 'tokenizer.json'), [prompt({ image: 300 })]);
    assert.deepEqual(prompts.image(300).ids, [...whole.ids].map(Number));
  });

  test('a text over text.maxLength is cut on the right and flagged', async () => {
    const long = 'red '.repeat(2000);
    const [t] = await matcher.embedTexts([long]);
    assert.equal(t!.truncated, true);
    const m = readPackage(pkg).manifest;
    if (m.family !== 'gme-qwen2-vl') return;
    const [p] = await (await GmePrompts.load(path.join(pkg, 'tokenizer.json'), m.gme.text, 'gme')).texts([long]);
    assert.equal(p!.ids.length, 1800);
  });

  test('a bad image fails alone with its code; a 20000:1 sliver is squashed like the reference and scored', async () => {
    const sliver = path.join(work, 'sliver.png');
    await gradient(sliver, 40000, 2, 0);
    const junk = path.join(work, 'junk.png');
    fs.writeFileSync(junk, 'no image here');
    const out = await matcher.embedImages([images[1]!, sliver, junk, images[2]!]);
    assert.deepEqual(out.map((e) => e.ok), [true, true, false, true]);
    assert.equal(!out[2]!.ok && out[2]!.error.code, 'MATCHD_IMAGE_UNSUPPORTED');
  });

  test('matchd score --model PACKAGE scores with the GME package from the command line', () => {
    const r = matchd(['score', images[0]!, TEXTS[0]!, TEXTS[1]!, '--model', pkg, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.results.length, 2);
    for (const x of out.results) assert.ok(x.cosine >= -1 && x.cosine <= 1 && x.score >= 0 && x.score <= 1);
  });

  test('the daemon runs a GME package: dropped images are sorted with sidecars naming the model', async () => {
    const ws = workspace({ model: { dir: pkg, maxBatch: 4 } });
    const d = await Daemon.start(loadConfig(ws.configFile), { baseDir: ws.root, registry: builtinRegistry(), logger: silentLogger() });
    try {
      for (const i of [0, 3]) fs.copyFileSync(images[i]!, path.join(ws.inbox, path.basename(images[i]!)));
      await waitFor(() => listFiles(ws.sorted).filter((f) => f.endsWith('.json')).length === 2, 'both images sorted', 60_000);
      for (const f of listFiles(ws.sorted).filter((x) => x.endsWith('.json'))) {
        const side = JSON.parse(fs.readFileSync(path.join(ws.sorted, f), 'utf8'));
        assert.equal(side.outcome, path.dirname(f));
        assert.equal(side.model.name, readPackage(pkg).manifest.name);
        assert.equal(side.results.length, 1);
      }
    } finally {
      await d.stop();
    }
  });
});
