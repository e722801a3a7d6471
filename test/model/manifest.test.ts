// The model package manifest: schema validation (good and each bad field), files, and the published JSON Schema.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { MatchdError } from '../../src/core/errors.ts';
import { readPackage } from '../../src/core/model/package.ts';
import { SCHEMAS, render } from '../../scripts/write-schemas.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { demoCopy, demoDir, repoRoot } from '../fixtures/packages.ts';

function invalid(dir: string, ...patterns: RegExp[]): void {
  assert.throws(() => readPackage(dir), (e: unknown) => {
    assert.ok(e instanceof MatchdError);
    assert.equal(e.code, 'MATCHD_MODEL_INVALID');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe('model package: manifest', () => {
  after(cleanupTmpDirs);

  test('the demo manifest is valid, with defaults applied', () => {
    const pkg = readPackage(demoDir);
    assert.equal(pkg.manifest.name, 'demo-colours');
    assert.equal(pkg.manifest.version, '1');
    assert.deepEqual(pkg.manifest.score, { mapping: 'linear', range: [0, 1] });
    assert.deepEqual(pkg.manifest.bands.list.map((b) => b.name), ['adopt', 'review', 'improve', 'reject']);
    assert.equal(pkg.manifest.family, 'dual-encoder', 'a manifest without family is a dual encoder');
    assert.equal(pkg.files['image.model'], path.join(demoDir, 'image.onnx'));
  });

  test('defaults: GME-style range [0.1, 0.5] and the four default bands when omitted', () => {
    const pkg = readPackage(demoCopy((m) => {
      delete m.score;
      delete m.bands;
    }));
    assert.deepEqual(pkg.manifest.score, { mapping: 'linear', range: [0.1, 0.5] });
    assert.deepEqual(pkg.manifest.bands, {
      on: 'cosine',
      list: [{ name: 'adopt', min: 0.4 }, { name: 'review', min: 0.3 }, { name: 'improve', min: 0.2 }, { name: 'reject' }],
    });
  });

  const badFields: [string, (m: any) => void, RegExp][] = [
    ['missing name', (m) => delete m.name, /name:/],
    ['negative embeddingSize', (m) => (m.embeddingSize = -1), /embeddingSize/],
    ['zero image width', (m) => (m.image.size.width = 0), /image\.size\.width/],
    ['unknown resize mode', (m) => (m.image.resize = 'stretch'), /image\.resize/],
    ['std containing 0', (m) => (m.image.std = [1, 0, 1]), /image\.std: std must not contain 0/],
    ['mean of two numbers', (m) => (m.image.mean = [0.5, 0.5]), /image\.mean/],
    ['image dtype int8', (m) => (m.image.dtype = 'int8'), /image\.dtype/],
    ['template without {text}', (m) => (m.text.query.template = 'find: {instruction}'), /text\.query\.template/],
    ['maxLength 0', (m) => (m.text.maxLength = 0), /text\.maxLength/],
    ['range upside down', (m) => (m.score.range = [0.5, 0.1]), /score\.range: range must be \[lo, hi\]/],
    ['duplicate band', (m) => (m.bands.list[1].name = 'adopt'), /duplicate band name 'adopt'/],
    ['thresholds not decreasing', (m) => (m.bands.list[1].min = 0.45), /thresholds must decrease/],
    ['band without min before the last', (m) => delete m.bands.list[0].min, /only the last band may omit min/],
    ['band name with a slash', (m) => (m.bands.list[0].name = 'a/b'), /they name folders/],
    ['a typo key', (m) => (m.image.meen = [0, 0, 0]), /meen/],
    ['unknown score mapping', (m) => (m.score.mapping = 'softmax'), /score\.mapping/],
    ['sigmoid without logitBias', (m) => (m.score = { mapping: 'sigmoid', logitScale: 10 }), /score\.logitBias: mapping sigmoid needs logitBias/],
    ['sigmoid with a range', (m) => (m.score = { mapping: 'sigmoid', logitScale: 10, logitBias: -1, range: [0, 1] }), /score\.range: range applies to mapping linear/],
    ['linear with a logitScale', (m) => (m.score.logitScale = 10), /score\.logitScale: logitScale applies to mapping sigmoid/],
    ['negative logitScale', (m) => (m.score = { mapping: 'sigmoid', logitScale: -1, logitBias: 0 }), /score\.logitScale/],
    ['unknown resample filter', (m) => (m.image.resample = 'box'), /image\.resample/],
    ['shortestEdge below the crop', (m) => ((m.image.resize = 'shortest-edge-crop'), (m.image.shortestEdge = 10)), /image\.shortestEdge: shortestEdge must be at least/],
    ['shortestEdge with squash', (m) => ((m.image.resize = 'squash'), (m.image.shortestEdge = 256)), /shortestEdge applies to resize shortest-edge-crop only/],
  ];
  for (const [what, edit, pattern] of badFields) {
    test(`bad field: ${what} → MATCHD_MODEL_INVALID naming it`, () => invalid(demoCopy(edit), pattern));
  }

  test('score mapping: linear by default (a bare range still works), sigmoid with the checkpoint values, calibrated flag kept', () => {
    assert.deepEqual(readPackage(demoCopy((m) => (m.score = { range: [0.2, 0.3] }))).manifest.score, { mapping: 'linear', range: [0.2, 0.3] });
    assert.deepEqual(readPackage(demoCopy((m) => (m.score = { mapping: 'linear' }))).manifest.score, { mapping: 'linear', range: [0.1, 0.5] });
    const sig = readPackage(demoCopy((m) => (m.score = { mapping: 'sigmoid', logitScale: 117.3, logitBias: -12.9, calibrated: false })));
    assert.deepEqual(sig.manifest.score, { mapping: 'sigmoid', logitScale: 117.3, logitBias: -12.9, calibrated: false });
  });

  test('image.resample defaults to bicubic; shortestEdge is optional', () => {
    const { manifest } = readPackage(demoDir);
    assert.equal(manifest.family === 'dual-encoder' && manifest.image.resample, 'bicubic');
    assert.equal(manifest.family === 'dual-encoder' && manifest.image.shortestEdge, undefined);
    const edited = readPackage(demoCopy((m) => {
      m.image.resample = 'bilinear';
      m.image.resize = 'shortest-edge-crop';
      m.image.shortestEdge = m.image.size.width + 32;
    })).manifest;
    assert.ok(edited.family === 'dual-encoder' && edited.image.resample === 'bilinear' && edited.image.shortestEdge! > edited.image.size.width);
  });

  test('several problems are listed together', () => {
    invalid(demoCopy((m) => {
      m.embeddingSize = 0;
      m.image.resize = 'nope';
      m.score.range = [1, 0];
    }), /embeddingSize/, /image\.resize/, /score\.range/);
  });

  test('missing files and a missing or broken model.yaml', () => {
    const dir = demoCopy((m) => {
      m.image.model = 'missing.onnx';
      m.text.tokenizer = 'nope.json';
    });
    invalid(dir, /image\.model: file not found/, /text\.tokenizer: file not found/);
    fs.rmSync(path.join(dir, 'model.yaml'));
    invalid(dir, /model\.yaml: not found/);
    fs.writeFileSync(path.join(dir, 'model.yaml'), 'name: [unclosed');
    invalid(dir, /model\.yaml/);
  });

  test('a gme-qwen2-vl manifest: the GME reference settings are the defaults; its files are checked', () => {
    const dir = path.join(demoCopy(), '..', 'gme');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'model.yaml'), stringify({
      family: 'gme-qwen2-vl', name: 'gme-test', version: 1, embeddingSize: 1536,
      gme: { vision: { model: 'vision.onnx' }, decoder: { model: 'decoder.onnx' }, tokenizer: 'tokenizer.json' },
    }));
    invalid(dir, /gme\.vision\.model: file not found/, /gme\.decoder\.model: file not found/, /gme\.tokenizer: file not found/);
    for (const f of ['vision.onnx', 'decoder.onnx', 'tokenizer.json']) fs.writeFileSync(path.join(dir, f), '');
    const { manifest } = readPackage(dir);
    assert.equal(manifest.family, 'gme-qwen2-vl');
    if (manifest.family !== 'gme-qwen2-vl') return;
    assert.deepEqual(manifest.score, { mapping: 'linear', range: [0.1, 0.5] });
    assert.equal(manifest.gme.image.minPixels, 256 * 784);
    assert.equal(manifest.gme.image.maxPixels, 1280 * 784);
    assert.equal(manifest.gme.image.fetchMinPixels, 4 * 784);
    assert.equal(manifest.gme.image.fetchMaxPixels, 16384 * 784);
    assert.equal(manifest.gme.text.maxLength, 1800);
    assert.equal(manifest.gme.text.imagePadId, 151655);
    assert.equal(manifest.gme.text.queryInstruction, 'Find an image that matches the given text.');
    assert.equal(manifest.gme.text.documentInstruction, 'You are a helpful assistant.');
    assert.equal(manifest.gme.text.template,
      '<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{vision}{text}<|im_end|>\n<|im_start|>assistant\n<|endoftext|>');
  });

  test('an unknown family and a gme manifest with dual-encoder keys are refused, naming the problem', () => {
    invalid(demoCopy((m) => (m.family = 'llava')), /family: Invalid discriminator value/);
    invalid(demoCopy((m) => (m.family = 'gme-qwen2-vl')), /gme: /, /image/);
  });

  test('the published JSON Schema is current with the loader\'s schema', () => {
    for (const [file, make] of Object.entries(SCHEMAS)) {
      assert.equal(fs.readFileSync(path.join(repoRoot, file), 'utf8'), render(make), `${file} is stale: run npm run schema`);
    }
    const schema = JSON.parse(fs.readFileSync(path.join(repoRoot, 'models/model.schema.json'), 'utf8'));
    const [dual, gme] = schema.oneOf;
    assert.deepEqual(dual.required.sort(), ['embeddingSize', 'image', 'name', 'text', 'version']);
    assert.deepEqual(gme.required.sort(), ['embeddingSize', 'family', 'gme', 'name', 'version']);
    assert.equal(dual.additionalProperties, false);
    assert.equal(gme.additionalProperties, false);
  });
});
