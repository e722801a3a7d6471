// `matchd model import` for Hugging Face ONNX folders: what it writes for CLIP and SigLIP, both layouts, variants,
// external data; every bad folder → MATCHD_MODEL_INVALID listing every problem; --out never half-written.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { MatchdError } from '../../src/core/errors.ts';
import { Matcher } from '../../src/core/matcher.ts';
import { planHfImport } from '../../src/core/model/import/hf-onnx.ts';
import { importHfOnnx } from '../../src/core/model/import/hf-write.ts';
import { readPackage } from '../../src/core/model/package.ts';
import { cosine } from '../../src/core/scoring.ts';
import { copyModel, hfModel } from '../fixtures/hf-models.ts';
import { writeParityImages } from '../fixtures/hf/parity-images.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { GraphBuilder } from '../fixtures/onnx-builder.ts';

const TEXTS = ['a photo of a dog', 'a red car parked on the street', 'two people walking on the beach at sunset'];

async function embeddings(pkg: string, images: string[]): Promise<{ images: Float32Array[]; texts: Float32Array[] }> {
  const m = await Matcher.open(pkg);
  try {
    const img = await m.embedImages(images);
    const txt = await m.embedTexts(TEXTS);
    return { images: img.map((e) => (e.ok ? e.vector : assert.fail(e.error.message))), texts: txt.map((t) => t.vector) };
  } finally {
    m.close();
  }
}

function assertSameEmbeddings(a: { images: Float32Array[]; texts: Float32Array[] }, b: typeof a, min: number, what: string): void {
  [...a.images, ...a.texts].forEach((v, i) => {
    const c = cosine(v, [...b.images, ...b.texts][i]!);
    assert.ok(c >= min, `${what}: embedding ${i} cos ${c.toFixed(6)} < ${min}`);
  });
}

function invalidImport(dir: string, ...patterns: RegExp[]): MatchdError {
  let caught: MatchdError | undefined;
  assert.throws(() => planHfImport(dir), (e: unknown) => {
    assert.ok(e instanceof MatchdError, String(e));
    assert.equal(e.code, 'MATCHD_MODEL_INVALID');
    for (const p of patterns) assert.match(e.message, p);
    caught = e;
    return true;
  });
  return caught!;
}

function manifestAt(dir: string): Record<string, any> {
  return parse(fs.readFileSync(path.join(dir, 'model.yaml'), 'utf8'));
}

describe('model import: Hugging Face ONNX folders', () => {
  let work: string;
  let images: string[];
  let clip: string;
  let siglip: string;
  before(async () => {
    work = tmpDir('matchd-hf-import-');
    images = (await writeParityImages(path.join(work, 'images'))).slice(0, 4);
    clip = hfModel({ family: 'clip' });
    siglip = hfModel({ family: 'siglip', logitScale: 7.5, logitBias: -0.75 });
  });
  after(cleanupTmpDirs);

  test('CLIP (split towers): preprocessing, text settings and outputs from the folder; linear starting calibration, flagged', async () => {
    const out = path.join(work, 'clip-pkg');
    const plan = await importHfOnnx(clip, out);
    assert.equal(plan.layout, 'split');
    const m = manifestAt(out);
    assert.equal(m.family, 'dual-encoder');
    assert.deepEqual(m.image.size, { width: 224, height: 224 });
    assert.equal(m.image.resize, 'shortest-edge-crop');
    assert.equal(m.image.shortestEdge, 224);
    assert.equal(m.image.resample, 'bicubic');
    assert.deepEqual(m.image.mean, [0.48145466, 0.4578275, 0.40821073]);
    assert.deepEqual(m.image.std, [0.26862954, 0.26130258, 0.27577711]);
    assert.equal(m.image.scale, 1 / 255);
    assert.equal(m.image.output, 'image_embeds');
    const tok = JSON.parse(fs.readFileSync(path.join(clip, 'tokenizer.json'), 'utf8'));
    assert.equal(m.text.padId, tok.model.vocab['<|endoftext|>'], 'pads with the pad_token of tokenizer_config.json');
    assert.equal(m.text.maxLength, 77);
    assert.equal(m.text.padding, 'longest');
    assert.equal(m.text.attentionMask, 'attention_mask');
    assert.equal(m.text.output, 'text_embeds');
    assert.equal(m.embeddingSize, 48);
    assert.deepEqual(m.score, { mapping: 'linear', range: [0.15, 0.35], calibrated: false });
    assert.equal(m.bands.on, 'cosine');
    assert.match(m.description, /not calibrated on your images/);
    assert.ok(fs.existsSync(path.join(out, 'vision_model.onnx')) && fs.existsSync(path.join(out, 'tokenizer.json')));
    const e = await embeddings(out, images);
    assert.ok(cosine(e.images[0]!, e.images[1]!) < 0.99, 'different images embed differently');
  });

  test('SigLIP (split towers): squash, max_length padding without a mask, sigmoid read from the combined model', async () => {
    const out = path.join(work, 'siglip-pkg');
    const plan = await importHfOnnx(siglip, out);
    const m = manifestAt(out);
    assert.equal(m.image.resize, 'squash');
    assert.equal(m.image.shortestEdge, undefined);
    assert.deepEqual(m.image.mean, [0.5, 0.5, 0.5]);
    assert.equal(m.text.padding, 'max_length');
    assert.equal(m.text.maxLength, 64);
    assert.equal(m.text.padId, 1);
    assert.equal(m.text.attentionMask, undefined);
    assert.equal(m.image.output, 'pooler_output');
    assert.equal(m.score.mapping, 'sigmoid');
    assert.ok(Math.abs(m.score.logitScale - 7.5) < 1e-5, `exp(logit_scale) ${m.score.logitScale}`);
    assert.ok(Math.abs(m.score.logitBias + 0.75) < 1e-6, `logit_bias ${m.score.logitBias}`);
    assert.equal(m.score.calibrated, false);
    assert.equal(m.bands.on, 'score');
    assert.match(plan.logits!.source, /model\.onnx: exp\(logit_scale\), logit_bias/);
    const matcher = await Matcher.open(out);
    try {
      const [r] = await matcher.score(images[0]!, ['a photo of a dog']);
      assert.ok(Math.abs(r!.score - 1 / (1 + Math.exp(-(7.5 * r!.cosine - 0.75)))) < 1e-6, 'score is the sigmoid of the scaled cosine');
    } finally {
      matcher.close();
    }
  });

  test('only the combined model.onnx: the towers are cut out and compute what the split towers compute', async () => {
    for (const [family, src] of [['clip', clip], ['siglip', siglip]] as const) {
      const combinedOnly = copyModel(src, work, `${family}-combined-only`);
      fs.rmSync(path.join(combinedOnly, 'onnx', 'vision_model.onnx'));
      fs.rmSync(path.join(combinedOnly, 'onnx', 'text_model.onnx'));
      const out = path.join(work, `${family}-combined-pkg`);
      const plan = await importHfOnnx(combinedOnly, out);
      assert.equal(plan.layout, 'combined');
      const m = manifestAt(out);
      assert.equal(m.image.output, 'image_embeds');
      assert.equal(m.text.output, 'text_embeds');
      assert.equal(m.normalized, true);
      assertSameEmbeddings(await embeddings(out, images), await embeddings(path.join(work, `${family}-pkg`), images), 0.99999, `${family} cut vs split`);
    }
  });

  test('external data (*.onnx_data) is carried into the package and loads, split and cut alike', async () => {
    const ext = hfModel({ family: 'siglip', logitScale: 7.5, logitBias: -0.75, externalData: true });
    assert.ok(fs.existsSync(path.join(ext, 'onnx', 'vision_model.onnx_data')));
    const out = path.join(work, 'siglip-ext-pkg');
    await importHfOnnx(ext, out);
    assert.ok(fs.statSync(path.join(out, 'vision_model.onnx_data')).size > fs.statSync(path.join(out, 'vision_model.onnx')).size);
    assert.equal(manifestAt(out).score.mapping, 'sigmoid', 'logits read through external data');
    const reference = await embeddings(path.join(work, 'siglip-pkg'), images);
    assertSameEmbeddings(await embeddings(out, images), reference, 0.99999, 'external data vs inline');
    const combinedOnly = copyModel(ext, work, 'siglip-ext-combined');
    for (const f of ['vision_model.onnx', 'vision_model.onnx_data', 'text_model.onnx', 'text_model.onnx_data']) fs.rmSync(path.join(combinedOnly, 'onnx', f));
    const cut = path.join(work, 'siglip-ext-cut-pkg');
    await importHfOnnx(combinedOnly, cut);
    assert.ok(fs.existsSync(path.join(cut, 'model.onnx_data')), 'the cut towers share the combined model\'s data file');
    assertSameEmbeddings(await embeddings(cut, images), reference, 0.99999, 'cut from external data vs inline');
  });

  test('--variant picks the fp16 / quantized files; a variant the folder lacks is listed with what it has', async () => {
    const withVariants = hfModel({ family: 'clip', variants: true });
    const fp32 = await embeddings(path.join(work, 'clip-pkg'), images);
    for (const [variant, min] of [['fp16', 0.999], ['quantized', 0.95]] as const) {
      const out = path.join(work, `clip-${variant}`);
      await importHfOnnx(withVariants, out, { variant });
      const suffix = variant === 'fp16' ? '_fp16' : '_quantized';
      assert.equal(manifestAt(out).image.model, `vision_model${suffix}.onnx`);
      assertSameEmbeddings(await embeddings(out, images), fp32, min, variant);
    }
    assert.throws(() => planHfImport(clip, { variant: 'fp16' }), (e: unknown) => {
      assert.ok(e instanceof MatchdError && e.code === 'MATCHD_MODEL_INVALID');
      assert.match(e.message, /no fp16 model: need onnx\/vision_model_fp16\.onnx and onnx\/text_model_fp16\.onnx, or onnx\/model_fp16\.onnx/);
      assert.match(e.message, /the folder has onnx\/model\.onnx, onnx\/text_model\.onnx, onnx\/vision_model\.onnx/);
      return true;
    });
  });

  describe('bad folders → MATCHD_MODEL_INVALID listing every problem', () => {
    const bad = (name: string, edit: (dir: string) => void): string => {
      const dir = copyModel(clip, work, `bad-${name}`);
      edit(dir);
      return dir;
    };

    test('missing files: preprocessor_config.json and tokenizer.json, both named', () => {
      const dir = bad('missing', (d) => {
        fs.rmSync(path.join(d, 'preprocessor_config.json'));
        fs.rmSync(path.join(d, 'tokenizer.json'));
      });
      invalidImport(dir, /preprocessor_config\.json: missing/, /tokenizer\.json: missing/);
    });

    test('an unknown model_type, and invalid JSON', () => {
      invalidImport(bad('type', (d) => fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ model_type: 'blip' }))),
        /model_type "blip" is not one this importer knows \(known: clip, siglip\)/);
      invalidImport(bad('json', (d) => fs.writeFileSync(path.join(d, 'preprocessor_config.json'), '{ "size": ')), /preprocessor_config\.json: invalid JSON/);
    });

    test('ONNX inputs / outputs that do not match the config', () => {
      const dir = bad('io', (d) => {
        const pre = JSON.parse(fs.readFileSync(path.join(d, 'preprocessor_config.json'), 'utf8'));
        pre.crop_size = { height: 256, width: 256 };
        pre.size = { shortest_edge: 256 };
        fs.writeFileSync(path.join(d, 'preprocessor_config.json'), JSON.stringify(pre));
        // a text tower that is really the vision tower
        fs.copyFileSync(path.join(d, 'onnx', 'vision_model.onnx'), path.join(d, 'onnx', 'text_model.onnx'));
      });
      const err = invalidImport(dir,
        /vision_model\.onnx: pixel_values takes 224×224 but preprocessor_config\.json makes 256×256/,
        /config\.json: vision_config\.image_size is 224 but preprocessor_config\.json makes 256×256/,
        /text_model\.onnx: no input_ids input \(it has: pixel_values\)/,
        /text_model\.onnx: input pixel_values is not one matchd can feed/,
        /text_model\.onnx: no text_embeds output .*CLIPTextModelWithProjection/);
      assert.ok((err.details!.problems as string[]).length >= 5);
    });

    test('a tokenizer that does not load; a pad token it lacks', () => {
      invalidImport(bad('tok', (d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), '{"version": "1.0", "model": {"type": "Nope"}}')), /tokenizer\.json: does not load/);
      invalidImport(bad('pad', (d) => {
        const tc = JSON.parse(fs.readFileSync(path.join(d, 'tokenizer_config.json'), 'utf8'));
        tc.pad_token = '<|nopad|>';
        fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(tc));
      }), /pad_token "<\|nopad\|>" is not in tokenizer\.json's vocabulary/);
    });

    test('a truncated ONNX file and missing external data', () => {
      invalidImport(bad('trunc', (d) => {
        const f = path.join(d, 'onnx', 'vision_model.onnx');
        fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 5000));
      }), /vision_model\.onnx: not a readable ONNX file/);
      const ext = copyModel(hfModel({ family: 'siglip', logitScale: 7.5, logitBias: -0.75, externalData: true }), work, 'bad-ext');
      fs.rmSync(path.join(ext, 'onnx', 'text_model.onnx_data'));
      invalidImport(ext, /text_model\.onnx: its external data file text_model\.onnx_data is missing/);
    });

    test('several problems at once are all listed, in one error', () => {
      const dir = bad('many', (d) => {
        fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ model_type: 'vit' }));
        fs.rmSync(path.join(d, 'tokenizer.json'));
        fs.writeFileSync(path.join(d, 'onnx', 'text_model.onnx'), 'not onnx');
      });
      const err = invalidImport(dir, /model_type "vit"/, /tokenizer\.json: missing/);
      assert.ok((err.details!.problems as string[]).length >= 2);
    });
  });

  describe('--out is never half-written', () => {
    /** A folder that passes every check but whose vision graph ONNX Runtime refuses: the failure comes late. */
    function lateFailure(): string {
      const dir = copyModel(clip, work, `late-${Math.random().toString(36).slice(2)}`);
      new GraphBuilder('broken')
        .input('pixel_values', 'float32', ['batch', 3, 224, 224])
        .node('NoSuchOp', ['pixel_values'], ['image_embeds'])
        .output('image_embeds', 'float32', ['batch', 48])
        .write(path.join(dir, 'onnx', 'vision_model.onnx'));
      return dir;
    }

    test('a failure after writing began leaves no --out and no temporary folder', async () => {
      const parent = tmpDir('matchd-out-');
      const out = path.join(parent, 'pkg');
      await assert.rejects(importHfOnnx(lateFailure(), out), (e: unknown) => e instanceof MatchdError);
      assert.deepEqual(fs.readdirSync(parent), [], 'nothing left in the parent folder');
    });

    test('an existing --out is refused without --force; with --force a failed import keeps the old package', async () => {
      const parent = tmpDir('matchd-out-');
      const out = path.join(parent, 'pkg');
      await importHfOnnx(siglip, out);
      const before = fs.readFileSync(path.join(out, 'model.yaml'), 'utf8');
      await assert.rejects(importHfOnnx(clip, out), (e: unknown) => e instanceof MatchdError && e.code === 'MATCHD_BAD_OPTION' && /--force/.test(e.message));
      await assert.rejects(importHfOnnx(lateFailure(), out, { force: true }));
      assert.equal(fs.readFileSync(path.join(out, 'model.yaml'), 'utf8'), before);
      assert.deepEqual(fs.readdirSync(parent), ['pkg']);
      await importHfOnnx(clip, out, { force: true });
      assert.equal(readPackage(out).manifest.family === 'dual-encoder' && (readPackage(out).manifest as any).image.resize, 'shortest-edge-crop');
      assert.deepEqual(fs.readdirSync(parent), ['pkg']);
    });
  });
});
