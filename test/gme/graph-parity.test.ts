// The exported GME graphs, run by matchd's own engine, against tools/gme/reference.py (an independent PyTorch
// forward the GME way) on a tiny random checkpoint: six grids of different sizes and aspect ratios, prompts built
// per the package contract, mixed image+text batches with right padding, and a text-only batch (M = 0).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InferenceSession } from '../../src/core/engine.ts';
import { openSession, tensor } from '../fixtures/engine.ts';
import {
  PATCH_DIM, cosine, importPackage, makeCheckpoint, maxAbsDiff, patchPositions, prompt, randomPixels, readNpyFloat32,
  runReference, tokenize, writeNpy,
} from '../fixtures/gme.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

const GRIDS: [number, number][] = [[4, 4], [4, 8], [8, 4], [6, 10], [2, 16], [16, 20]]; // patches (h, w)
type Item = { image: number } | { text: string };
const LONG = 'a photo of a blue car with a dog on the red car, given the text that matches an image of a cat';
const BATCHES: Record<string, Item[]> = {
  mixed: [{ image: 0 }, { text: 'a red cat' }, { image: 1 }, { text: LONG }, { image: 2 }],
  images: [{ image: 3 }, { text: 'dog' }, { image: 4 }, { image: 5 }],
  texts: [{ text: 'cat' }, { text: LONG }, { text: 'Ünïcödé, 12345 digits and\ttabs\n' }],
};
const hidden = 32;

class Gme {
  constructor(readonly vision: InferenceSession, readonly decoder: InferenceSession, readonly tokenizer: string) {}

  static async open(pkg: string): Promise<Gme> {
    return new Gme(await openSession(path.join(pkg, 'vision.onnx')), await openSession(path.join(pkg, 'decoder.onnx')),
      path.join(pkg, 'tokenizer.json'));
  }

  /** vision.onnx on B images of one grid at once: [B, tokens*hidden] each. */
  async images(grid: number, seeds: number[]): Promise<Float32Array[]> {
    const [gh, gw] = GRIDS[grid]!;
    const p = gh * gw;
    const pixels = new Float32Array(seeds.length * p * PATCH_DIM);
    seeds.forEach((s, b) => pixels.set(randomPixels(p, s), b * p * PATCH_DIM));
    const out = await this.vision.run({
      pixel_values: tensor('float32', [seeds.length, p, PATCH_DIM], pixels),
      position_ids: tensor('int64', [p, 2], patchPositions(gh, gw)),
    });
    const emb = out.image_embeds!;
    assert.deepEqual(emb.dims, [seeds.length, p / 4, hidden]);
    const per = (p / 4) * hidden;
    return seeds.map((_, b) => (emb.data as Float32Array).slice(b * per, (b + 1) * per));
  }

  /** decoder.onnx on a batch of items (each image encoded alone, seed = grid index). */
  async embed(items: Item[]): Promise<Float32Array[]> {
    const t = await tokenize(this.tokenizer, items.map((i) => prompt('image' in i ? { image: (GRIDS[i.image]![0] * GRIDS[i.image]![1]) / 4 } : i)));
    const visual: Float32Array[] = [];
    for (const i of items) if ('image' in i) visual.push(...(await this.images(i.image, [i.image])));
    const m = visual.reduce((n, v) => n + v.length / hidden, 0);
    const images = new Float32Array(m * hidden);
    let at = 0;
    for (const v of visual) {
      images.set(v, at);
      at += v.length;
    }
    const out = await this.decoder.run({
      input_ids: tensor('int64', t.dims, t.ids),
      attention_mask: tensor('int64', t.dims, t.mask),
      image_embeds: tensor('float32', [m, hidden], images),
    });
    const e = out.embeddings!.data as Float32Array;
    assert.deepEqual(out.embeddings!.dims, [items.length, hidden]);
    return items.map((_, b) => e.slice(b * hidden, (b + 1) * hidden));
  }

  dispose(): void {
    this.vision.dispose();
    this.decoder.dispose();
  }
}

/** Write a batch in the image processor's format for reference.py. */
async function referenceInputs(dir: string, tokenizerFile: string, items: Item[]): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const t = await tokenize(tokenizerFile, items.map((i) => prompt('image' in i ? { image: (GRIDS[i.image]![0] * GRIDS[i.image]![1]) / 4 } : i)));
  writeNpy(path.join(dir, 'input_ids.npy'), t.ids, t.dims);
  writeNpy(path.join(dir, 'attention_mask.npy'), t.mask, t.dims);
  const images = items.filter((i): i is { image: number } => 'image' in i);
  if (images.length === 0) return;
  const pixels = images.map((i) => randomPixels(GRIDS[i.image]![0] * GRIDS[i.image]![1], i.image));
  const all = new Float32Array(pixels.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pixels) {
    all.set(p, at);
    at += p.length;
  }
  writeNpy(path.join(dir, 'pixel_values.npy'), all, [all.length / PATCH_DIM, PATCH_DIM]);
  const grid = BigInt64Array.from(images.flatMap((i) => [1n, BigInt(GRIDS[i.image]![0]), BigInt(GRIDS[i.image]![1])]));
  writeNpy(path.join(dir, 'image_grid_thw.npy'), grid, [images.length, 3]);
}

function rows(file: string): Float32Array[] {
  const { data, shape } = readNpyFloat32(file);
  return Array.from({ length: shape[0]! }, (_, b) => data.slice(b * shape[1]!, (b + 1) * shape[1]!));
}

describe('gme: exported graphs vs the PyTorch reference', () => {
  let work: string;
  let f32: Gme;
  let f16: Gme;
  let bf16: Gme;
  const reference: Record<string, Float32Array[]> = {};
  const bf16Reference: Record<string, Float32Array[]> = {};

  before(async () => {
    work = tmpDir('matchd-gme-parity-');
    const ckpt = makeCheckpoint(path.join(work, 'ckpt'), { seed: 11 });
    // BF16, sharded, newer transformers key layout and untied lm_head: the other reader paths.
    const ckptBf16 = makeCheckpoint(path.join(work, 'ckpt-bf16'), { seed: 12, dtype: 'BF16', shards: 3, layout: 'new', untied: true });
    f32 = await Gme.open(importPackage(ckpt, path.join(work, 'f32')));
    f16 = await Gme.open(importPackage(ckpt, path.join(work, 'f16'), 'float16'));
    bf16 = await Gme.open(importPackage(ckptBf16, path.join(work, 'bf16')));
    const cases = [];
    for (const name of Object.keys(BATCHES)) {
      await referenceInputs(path.join(work, 'in', name), f32.tokenizer, BATCHES[name]!);
      cases.push({ inputs: path.join(work, 'in', name), out: path.join(work, `ref-${name}.npy`) });
    }
    runReference(ckpt, cases);
    for (const name of Object.keys(BATCHES)) reference[name] = rows(path.join(work, `ref-${name}.npy`));
    runReference(ckptBf16, [{ inputs: path.join(work, 'in', 'mixed'), out: path.join(work, 'ref-bf16.npy') }]);
    bf16Reference.mixed = rows(path.join(work, 'ref-bf16.npy'));
  });

  after(() => {
    for (const g of [f32, f16, bf16]) g?.dispose();
    cleanupTmpDirs();
  });

  test('float32 package: every embedding of every batch matches the reference (cos >= 0.99999)', async (t) => {
    let worst = 1;
    for (const [name, items] of Object.entries(BATCHES)) {
      const ours = await f32.embed(items);
      ours.forEach((e, i) => {
        const c = cosine(e, reference[name]![i]!);
        worst = Math.min(worst, c);
        assert.ok(c >= 0.99999, `${name}[${i}]: cos ${c}`);
      });
    }
    // the embeddings differ from each other: a graph that ignored its inputs would fail here
    const m = reference.mixed!;
    assert.ok(cosine(m[0]!, m[2]!) < 0.99 && cosine(m[1]!, m[3]!) < 0.99, 'reference embeddings are too alike to test anything');
    t.diagnostic(`float32 worst 1 - cos vs reference: ${(1 - worst).toExponential(2)}`);
  });

  test('BF16 sharded checkpoint in the newer key layout: the same parity', async () => {
    const ours = await bf16.embed(BATCHES.mixed!);
    ours.forEach((e, i) => assert.ok(cosine(e, bf16Reference.mixed![i]!) >= 0.99999, `mixed[${i}]`));
  });

  // float16 rounds each weight by up to 2^-11 relative (4.9e-4). The bound below allows a unit embedding to move by
  // sqrt(2e-5) = 4.5e-3 (about 10 such roundings accumulated; measured here: 1 - cos 2.5e-7) and any image-text score
  // by 0.005 (measured: 2e-4) on GME's [0.1, 0.5] range, the float16 budget. A wrong rotary theta in the
  // vision tower moves this tiny model by 1e-5, so the bound still sees real mistakes.
  test('float16 package: 1 - cos <= 1e-5 against the float32 reference, every image-text score within 0.005', async (t) => {
    let worst = 0;
    const ours: { image: Float32Array[]; text: Float32Array[] } = { image: [], text: [] };
    const ref: { image: Float32Array[]; text: Float32Array[] } = { image: [], text: [] };
    for (const [name, items] of Object.entries(BATCHES)) {
      (await f16.embed(items)).forEach((e, i) => {
        const r = reference[name]![i]!;
        worst = Math.max(worst, 1 - cosine(e, r));
        assert.ok(1 - cosine(e, r) <= 1e-5, `${name}[${i}]: 1 - cos ${1 - cosine(e, r)}`);
        const kind = 'image' in items[i]! ? 'image' : 'text';
        ours[kind].push(e);
        ref[kind].push(r);
      });
    }
    let score = 0;
    ours.image.forEach((img, i) => ours.text.forEach((txt, j) => {
      score = Math.max(score, Math.abs(cosine(img, txt) - cosine(ref.image[i]!, ref.text[j]!)) / 0.4);
    }));
    assert.ok(score < 0.005, `largest |delta score| ${score}`);
    t.diagnostic(`float16 vs float32 reference: worst 1 - cos ${worst.toExponential(2)}, largest |delta score| ${score.toExponential(2)} over ${ours.image.length * ours.text.length} pairs`);
  });

  test('batch invariance: vision on two same-grid images at once = each alone; an image row alone = inside a batch', async () => {
    const [a, b] = await f32.images(3, [3, 99]);
    const [aAlone] = await f32.images(3, [3]);
    const [bAlone] = await f32.images(3, [99]);
    assert.ok(maxAbsDiff(a!, aAlone!) <= 1e-5 && maxAbsDiff(b!, bAlone!) <= 1e-5);
    const batch = await f32.embed(BATCHES.mixed!);
    for (const i of [0, 2, 4]) {
      const [alone] = await f32.embed([BATCHES.mixed![i]!]);
      assert.ok(maxAbsDiff(alone!, batch[i]!) <= 1e-5, `mixed[${i}] alone vs in batch: ${maxAbsDiff(alone!, batch[i]!)}`);
    }
  });

  test('padding invariance: padding never changes a text\'s embedding', async () => {
    const [alone] = await f32.embed([{ text: 'a red cat' }]);
    const [padded] = await f32.embed([{ text: 'a red cat' }, { text: LONG }, { image: 5 }]);
    assert.ok(maxAbsDiff(alone!, padded!) <= 1e-5, `diff ${maxAbsDiff(alone!, padded!)}`);
  });
});
