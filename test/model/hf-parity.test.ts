// Parity of imported CLIP / SigLIP packages with two independent implementations of the same folder:
// - transformers.js 4.3.x (tokenizer, image processor, ONNX models, SigLIP's logits): token ids, embeddings
//   (cos ≥ 0.999) and scores (|Δ| < 0.005) over 12 images of varied sizes and aspect ratios and 6 texts;
// - the Python reference for images: transformers' processors written out with PIL (hf/pil-reference.py), which
//   is what the checkpoints were published with.
// transformers.js resizes with sharp's affine transform (no antialiasing when shrinking, pixel-corner sampling when
// enlarging), so on many images it departs from Python itself. An image is held to transformers.js where its
// preprocessing reproduces Python's (embedding cos ≥ 0.9999 and scores within half the tolerance), else to the
// Python reference at the same tolerances; the table printed says which, with every figure. Texts: transformers.js.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Tokenizer } from 'tokenizers';
import { InferenceSession } from '../../src/core/engine.ts';
import { loadImage } from '../../src/core/image/decode.ts';
import { KERNEL_OF_RESAMPLE } from '../../src/core/image/spec.ts';
import { Matcher } from '../../src/core/matcher.ts';
import type { HfPlan } from '../../src/core/model/import/hf-onnx.ts';
import { importHfOnnx } from '../../src/core/model/import/hf-write.ts';
import type { DualEncoderManifest } from '../../src/core/model/manifest.ts';
import { readPackage } from '../../src/core/model/package.ts';
import { TextTokenizer } from '../../src/core/model/tokenizer.ts';
import { cosine, l2normalize, mapScore } from '../../src/core/scoring.ts';
import { HF_FIXTURES, PYTHON, hfModel, requirePython } from '../fixtures/hf-models.ts';
import { PARITY_IMAGES, writeParityImages } from '../fixtures/hf/parity-images.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { runTransformersJs, type TjsResult } from '../fixtures/transformers-js.ts';

const TEXTS = [
  'a photo of a dog playing in the park',
  'A Red CAR, parked on the street!',
  "the cat's bowl  of   fresh fruit",
  'fireworks exploding in the night sky over the river',
  'café naïve: 42 élan',
  'two people walking on the beach at sunset',
];
const LONG = `a photo of ${'a very small dog and '.repeat(30)}a cat`;
const COS = 0.999;
const SCORE = 0.005;
/** How closely matchd must reproduce the Python reference, and transformers.js must to stand in for it. */
const PIL_COS = 0.9999;

interface Side {
  images: Float32Array[];
  texts: Float32Array[];
}

/** CHW float input for the vision tower from HWC uint8 pixels, normalised as the manifest says. */
function toTensor(m: DualEncoderManifest, hwc: Uint8Array): Float32Array {
  const { width, height } = m.image.size;
  const out = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < width * height; p++) out[c * width * height + p] = (hwc[p * 3 + c]! * m.image.scale - m.image.mean[c]!) / m.image.std[c]!;
  }
  return out;
}

async function embedPixels(pkg: string, m: DualEncoderManifest, tensors: Float32Array[]): Promise<Float32Array[]> {
  const session = await InferenceSession.open(path.join(pkg, m.image.model));
  try {
    const out: Float32Array[] = [];
    for (const data of tensors) {
      const r = await session.run({ [m.image.input]: { type: 'float32', dims: [1, 3, m.image.size.height, m.image.size.width], data } }, [m.image.output]);
      out.push(l2normalize(Float32Array.from(r[m.image.output]!.data as Float32Array)));
    }
    return out;
  } finally {
    session.dispose();
  }
}

function pilPixels(model: string, images: string[], work: string): Uint8Array {
  const out = path.join(work, `pil-${path.basename(model)}.bin`);
  const r = spawnSync(PYTHON, [path.join(HF_FIXTURES, 'pil-reference.py'), model, out, ...images], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pil-reference.py failed: ${r.stderr}`);
  return fs.readFileSync(out);
}

function pixelStats(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

const f5 = (x: number) => x.toFixed(5);

for (const family of ['clip', 'siglip'] as const) {
  describe(`parity (${family}): matchd vs transformers.js and the Python reference`, () => {
    let work: string;
    let images: string[];
    let model: string;
    let pkg: string;
    let plan: HfPlan;
    let manifest: DualEncoderManifest;
    let tjs: TjsResult;
    let ours: Side & { scores: number[][] };
    let pil: Float32Array[];
    let pilRaw: Uint8Array;

    before(async () => {
      requirePython('torch, onnx, numpy, PIL');
      work = tmpDir(`matchd-parity-${family}-`);
      images = await writeParityImages(path.join(work, 'images'));
      model = hfModel(family === 'siglip' ? { family, logitScale: 12, logitBias: -0.2 } : { family });
      pkg = path.join(work, 'pkg');
      plan = await importHfOnnx(model, pkg);
      manifest = readPackage(pkg).manifest as DualEncoderManifest;
      tjs = runTransformersJs(model, family, images, [...TEXTS, LONG], work);
      const matcher = await Matcher.open(pkg);
      try {
        const img = await matcher.embedImages(images);
        const txt = await matcher.embedTexts(TEXTS);
        const vectors = img.map((e) => (e.ok ? e.vector : assert.fail(e.error.message)));
        const texts = txt.map((t) => t.vector);
        if (family === 'clip') {
          // The imported CLIP range, [0.15, 0.35], lies above every cosine of a random model, so every score would
          // clamp to 0 and compare nothing: keep its width (its slope), centred on this model's median cosine.
          const all = vectors.flatMap((v) => texts.map((t) => cosine(v, t))).sort((a, b) => a - b);
          const mid = all[all.length >> 1]!;
          const [lo, hi] = (manifest.score as { range: [number, number] }).range;
          manifest = { ...manifest, score: { mapping: 'linear', range: [mid - (hi - lo) / 2, mid + (hi - lo) / 2] } };
        }
        ours = { images: vectors, texts, scores: vectors.map((v) => texts.map((t) => mapScore(cosine(v, t), manifest.score))) };
        assert.deepEqual(
          family === 'siglip' ? ours.scores : [],
          family === 'siglip' ? vectors.map((v) => matcher.scoreVector(v, txt).map((r) => r.score)) : [],
          "SigLIP: the package's own scoring",
        );
      } finally {
        matcher.close();
      }
      pilRaw = pilPixels(model, images, work);
      const n = manifest.image.size.width * manifest.image.size.height * 3;
      pil = await embedPixels(pkg, manifest, images.map((_, i) => toTensor(manifest, pilRaw.subarray(i * n, (i + 1) * n))));
    });
    after(cleanupTmpDirs);

    test('tokenisation: the same ids as transformers.js; over the limit matchd keeps the end token (as Python does), transformers.js does not', async () => {
      const tok = TextTokenizer.load(path.join(pkg, 'tokenizer.json'), manifest.text);
      const batch = await tok.encode([...TEXTS, LONG]);
      const [n, len] = batch.dims;
      const ids = Array.from({ length: n }, (_, i) => Array.from(batch.ids.subarray(i * len, (i + 1) * len), Number));
      assert.deepEqual(ids.slice(0, TEXTS.length), tjs.textIds.slice(0, TEXTS.length), 'padded id matrices');
      assert.deepEqual(batch.truncated, [...TEXTS.map(() => false), true]);
      // The overlong text: matchd (like Python's tokenizers) cuts the words and keeps the end token; transformers.js
      // 4.3 cuts after adding it, so its last id is a word. Everything before agrees.
      const eos = Tokenizer.fromFile(path.join(pkg, 'tokenizer.json')).tokenToId(family === 'clip' ? '<|endoftext|>' : '</s>');
      const [mine, theirs] = [ids.at(-1)!, tjs.textIds.at(-1)!];
      assert.equal(mine.length, manifest.text.maxLength);
      assert.deepEqual(mine.slice(0, -1), theirs.slice(0, -1));
      assert.equal(mine.at(-1), eos);
      assert.notEqual(theirs.at(-1), eos);
    });

    test(`images follow the Python reference (PIL): pixels within 0.75 grey levels on average, embeddings cos ≥ 0.9999`, async () => {
      const n = manifest.image.size.width * manifest.image.size.height * 3;
      const spec = {
        width: manifest.image.size.width, height: manifest.image.size.height, resize: manifest.image.resize,
        kernel: KERNEL_OF_RESAMPLE[manifest.image.resample], shortestEdge: manifest.image.shortestEdge ?? null,
      };
      const rows: string[] = [];
      for (const [i, file] of images.entries()) {
        const mine = await loadImage(file, spec);
        const s = pixelStats(mine.data, pilRaw.subarray(i * n, (i + 1) * n));
        const c = cosine(ours.images[i]!, pil[i]!);
        rows.push(`${PARITY_IMAGES[i]!.name.padEnd(28)} pixels mean ${s.mean.toFixed(2)} max ${String(s.max).padStart(3)}  cos ${f5(c)}`);
        assert.ok(s.mean <= 0.75 && s.max <= 16, `${PARITY_IMAGES[i]!.name}: pixels differ from PIL by mean ${s.mean.toFixed(2)}, max ${s.max}`);
        assert.ok(c >= PIL_COS, `${PARITY_IMAGES[i]!.name}: cos ${f5(c)} with the PIL-preprocessed embedding`);
      }
      process.stdout.write(`# ${family} vs PIL:\n${rows.map((r) => `#   ${r}`).join('\n')}\n`);
    });

    test('the calibration read from the combined graph is the one transformers.js computes its logits with', () => {
      // logits_per_image = exp(logit_scale) · cos + logit_bias, from transformers.js's own embeddings and logits.
      const { scale, bias } = plan.logits!;
      let worst = 0;
      for (const [i, img] of tjs.imageEmbeds.entries()) {
        for (const [j, txt] of tjs.textEmbeds.slice(0, TEXTS.length).entries()) {
          const c = cosine(l2normalize(Float32Array.from(img)), l2normalize(Float32Array.from(txt)));
          worst = Math.max(worst, Math.abs(scale * c + (bias ?? 0) - tjs.logitsPerImage[i]![j]!));
        }
      }
      assert.ok(worst < 1e-3 * scale, `logits differ by up to ${worst}`);
    });

    test(`embeddings (cos ≥ ${COS}) and scores (|Δ| < ${SCORE}) agree with transformers.js; where its resize departs from Python, with the Python reference`, async () => {
      const tjsFromPixels = await embedPixels(pkg, manifest, tjs.pixelValues);
      const tjsTexts = tjs.textEmbeds.slice(0, TEXTS.length).map((t) => l2normalize(Float32Array.from(t)));
      const rows: string[] = [];
      let departures = 0;
      const seen = { text: 1, image: 1, scoreTjs: 0, score: 0, directCos: 1, directScore: 0 };
      for (const [j, t] of ours.texts.entries()) {
        const c = cosine(t, tjsTexts[j]!);
        seen.text = Math.min(seen.text, c);
        assert.ok(c >= COS, `text ${JSON.stringify(TEXTS[j])}: cos ${f5(c)}`);
      }
      // SigLIP: transformers.js's own score, the sigmoid of its combined model's logit; CLIP: the package's mapping.
      const tjsScore = (i: number, j: number, img: Float32Array) =>
        family === 'siglip' ? 1 / (1 + Math.exp(-tjs.logitsPerImage[i]![j]!)) : mapScore(cosine(img, tjsTexts[j]!), manifest.score);
      for (const [i, mine] of ours.images.entries()) {
        const theirs = l2normalize(Float32Array.from(tjs.imageEmbeds[i]!));
        const pilScores = tjsTexts.map((t) => mapScore(cosine(pil[i]!, t), manifest.score));
        const tjsScores = tjsTexts.map((_, j) => tjsScore(i, j, theirs));
        // transformers.js stands in for Python on an image when its own preprocessing reproduces Python's closely
        // enough to be a reference at these tolerances: embeddings within cos PIL_COS and scores within half of SCORE.
        const tjsWithPil = cosine(tjsFromPixels[i]!, pil[i]!);
        const tjsScoreGap = Math.max(...tjsScores.map((x, j) => Math.abs(x - pilScores[j]!)));
        const tjsIsFaithful = tjsWithPil >= PIL_COS && tjsScoreGap < SCORE / 2;
        if (!tjsIsFaithful) departures++;
        const withTjs = cosine(mine, theirs);
        seen.directCos = Math.min(seen.directCos, withTjs);
        seen.directScore = Math.max(seen.directScore, ...tjsScores.map((x, j) => Math.abs(x - ours.scores[i]![j]!)));
        const c = tjsIsFaithful ? withTjs : cosine(mine, pil[i]!);
        rows.push(
          `${PARITY_IMAGES[i]!.name.padEnd(28)} matchd~tjs ${f5(withTjs)}  tjs~PIL ${f5(tjsWithPil)} (scores ±${tjsScoreGap.toFixed(4)})  matchd~PIL ${f5(cosine(mine, pil[i]!))}` +
            (tjsIsFaithful ? '' : '  (tjs departs from Python)'),
        );
        seen.image = Math.min(seen.image, c);
        assert.ok(c >= COS, `${PARITY_IMAGES[i]!.name}: cos ${f5(c)} with ${tjsIsFaithful ? 'transformers.js' : 'the Python reference'}`);
        for (let j = 0; j < TEXTS.length; j++) {
          const refScore = tjsIsFaithful ? tjsScores[j]! : pilScores[j]!;
          const d = Math.abs(ours.scores[i]![j]! - refScore);
          seen.score = Math.max(seen.score, d);
          if (tjsIsFaithful) seen.scoreTjs = Math.max(seen.scoreTjs, d);
          assert.ok(d < SCORE, `${PARITY_IMAGES[i]!.name} × ${JSON.stringify(TEXTS[j])}: score ${ours.scores[i]![j]} vs ${refScore} (|Δ| ${d.toFixed(5)})`);
        }
      }
      process.stdout.write(`# ${family} vs transformers.js ${tjs.version} (${departures} of ${images.length} images: tjs departs from Python):\n${rows.map((r) => `#   ${r}`).join('\n')}\n`);
      process.stdout.write(`# ${family}: min text cos ${f5(seen.text)}, min image cos with the reference ${f5(seen.image)}, max |Δscore| ${seen.score.toFixed(5)} (${seen.scoreTjs.toFixed(5)} where transformers.js is the reference); ` +
        `against transformers.js on every image: min cos ${f5(seen.directCos)}, max |Δscore| ${seen.directScore.toFixed(5)}\n`);
      const spread = ours.scores.flat();
      assert.ok(Math.min(...spread) < 0.2 && Math.max(...spread) > 0.8, `scores should spread over (0, 1), not clamp: ${Math.min(...spread)}–${Math.max(...spread)}`);
    });

    test('the thresholds discriminate: preprocessing the wrong way (mean and std swapped for 0/1) fails them', async () => {
      const n = manifest.image.size.width * manifest.image.size.height * 3;
      const wrong = { ...manifest, image: { ...manifest.image, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] } };
      const bad = await embedPixels(pkg, manifest, images.map((_, i) => toTensor(wrong, pilRaw.subarray(i * n, (i + 1) * n))));
      const worst = Math.min(...bad.map((v, i) => cosine(v, pil[i]!)));
      assert.ok(worst < COS, `wrong normalisation still gives cos ${f5(worst)}: the model would not notice preprocessing errors`);
      const between = Math.min(...ours.images.flatMap((a, i) => ours.images.slice(i + 1).map((b) => cosine(a, b))));
      assert.ok(between < 0.9, `different images should embed differently (closest pair ${f5(between)})`);
    });
  });
}
