// `matchd model quantize` as a user runs it, and tools/quantize/quantize.py on hand-built graphs: int8 products within
// their error bound, dual-encoder (tiny CLIP) and GME (tiny Qwen2-VL, external data) packages whose embeddings agree
// with float32, every bad input with its code and nothing left in or beside --out, an interrupted run leaving nothing.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { parse } from 'yaml';
import { Matcher } from '../../src/core/matcher.ts';
import { openSession } from '../fixtures/engine.ts';
import { cosine, importPackage, makeCheckpoint, matchd, python } from '../fixtures/gme.ts';
import { hfModel } from '../fixtures/hf-models.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { GraphBuilder, attrFloat, randomFloat32 } from '../fixtures/onnx-builder.ts';
import { repoRoot } from '../fixtures/packages.ts';

const TOOL = path.join(repoRoot, 'tools', 'quantize', 'quantize.py');

/** Op types of an ONNX file's main graph, with counts. */
function ops(file: string): Record<string, number> {
  const model = onnxProto.onnx.ModelProto.decode(fs.readFileSync(file));
  const count: Record<string, number> = {};
  for (const n of model.graph!.node!) count[n.opType!] = (count[n.opType!] ?? 0) + 1;
  return count;
}

/** Run a quantize that must fail with `code` and `pattern`, leaving `parent` as it was. */
function expectRefused(args: string[], parent: string, code: string, pattern: RegExp): void {
  const before = fs.readdirSync(parent).sort();
  const r = matchd(['model', 'quantize', ...args]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`matchd: ${code}: `));
  assert.match(r.stderr, pattern);
  assert.deepEqual(fs.readdirSync(parent).sort(), before, 'nothing may be left in or beside --out');
}

/** Embeddings of a few generated images and texts through a package. */
async function embed(dir: string, images: Buffer[], texts: string[]): Promise<{ images: Float32Array[]; texts: Float32Array[] }> {
  const m = await Matcher.open(dir, { maxBatch: 4 });
  try {
    const imgs = await m.embedImages(images);
    return { images: imgs.map((e) => (e.ok ? e.vector : assert.fail(e.error.message))), texts: (await m.embedTexts(texts)).map((t) => t.vector) };
  } finally {
    m.close();
  }
}

async function sampleImages(n: number): Promise<Buffer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => sharp({
    create: { width: 120 + 17 * i, height: 90 + 11 * i, channels: 3, background: { r: (60 * i) % 256, g: (200 - 40 * i) & 255, b: (30 + 90 * i) % 256 } },
  }).composite([{ input: { create: { width: 40, height: 30, channels: 3, background: { r: 250 - 30 * i, g: 20 * i, b: 128 } } }, left: 10 + 5 * i, top: 12 }])
    .jpeg().toBuffer()));
}

/** The float32 and int8 packages agree on every embedding and on every image–text cosine. */
function assertAgree(f: { images: Float32Array[]; texts: Float32Array[] }, q: { images: Float32Array[]; texts: Float32Array[] }, min: number, maxDelta: number): void {
  f.images.forEach((v, i) => assert.ok(cosine(v, q.images[i]!) >= min, `image ${i}: cosine ${cosine(v, q.images[i]!)} to float32`));
  f.texts.forEach((v, i) => assert.ok(cosine(v, q.texts[i]!) >= min, `text ${i}: cosine ${cosine(v, q.texts[i]!)} to float32`));
  for (const [i, v] of f.images.entries()) {
    for (const [j, t] of f.texts.entries()) {
      const d = Math.abs(cosine(v, t) - cosine(q.images[i]!, q.texts[j]!));
      assert.ok(d < maxDelta, `image ${i} × text ${j}: cosine moved by ${d}`);
    }
  }
}

describe('model quantize', () => {
  let work: string;
  let clipPkg: string;
  before(async () => {
    work = tmpDir('matchd-quantize-');
    clipPkg = path.join(work, 'clip');
    const r = matchd(['model', 'import', hfModel({ family: 'clip' }), '--out', clipPkg]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(cleanupTmpDirs);

  test('quantize.py: every int8 product within its rounding bound (MatMul + Add(bias, ·), Gemm transB = 1)', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'graph-'));
    const [m, k, n] = [6, 96, 40];
    const w1 = randomFloat32(k * n, 11, 0.2);
    const b1 = randomFloat32(n, 12, 0.5);
    const w2t = randomFloat32(n * k, 13, 0.3); // Gemm's B stored [N, K], transB = 1
    const c2 = randomFloat32(n, 14, 0.5);
    const src = new GraphBuilder('two-products')
      .input('x', 'float32', ['m', k]).output('y1', 'float32', ['m', n]).output('y2', 'float32', ['m', n])
      .initializer('w1', 'float32', [k, n], w1).initializer('b1', 'float32', [n], b1)
      .initializer('w2t', 'float32', [n, k], w2t).initializer('c2', 'float32', [n], c2)
      .node('MatMul', ['x', 'w1'], ['mm']).node('Add', ['b1', 'mm'], ['y1'])
      .node('Gemm', ['x', 'w2t', 'c2'], ['y2'], { transB: 1, alpha: attrFloat(1), beta: attrFloat(1) })
      .write(path.join(dir, 'in.onnx'));

    // Both products are output projections: kept by default, so there is nothing to quantize.
    const kept = spawnSync(python, [TOOL, src, path.join(dir, 'kept.onnx'), '--min-elements', '1'], { encoding: 'utf8' });
    assert.equal(kept.status, 2);
    assert.match(kept.stderr, /none of its 2 weight products can be quantized \(output projection/);
    assert.ok(!fs.existsSync(path.join(dir, 'kept.onnx')));

    const out = path.join(dir, 'out.onnx');
    const r = spawnSync(python, [TOOL, src, out, '--min-elements', '1', '--quantize-projection'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.quantized, 2);
    assert.deepEqual(report.products.map((p: { shape: number[] }) => p.shape), [[k, n], [k, n]]);
    assert.deepEqual({ ...ops(out) }, { DynamicQuantizeLinear: 2, MatMulInteger: 2, Cast: 2, Mul: 4, Add: 2 });

    const x = randomFloat32(m * k, 15, 1.5);
    const [f32, i8] = await Promise.all([openSession(src), openSession(out)]);
    const feeds = { x: { type: 'float32' as const, dims: [m, k], data: x } };
    const [a, b] = [await f32.run(feeds, ['y1', 'y2']), await i8.run(feeds, ['y1', 'y2'])];
    f32.dispose();
    i8.dispose();
    // x is quantized per tensor to uint8 (step xs, rounding and the zero point's rounding cost at most xs), each
    // weight column to int8 (step ws[n] / 2 at most): |Δy| <= Σk xs·|W| + |x|·ws/2 + xs·ws/2, plus float32 rounding.
    const xs = (Math.max(0, ...x) - Math.min(0, ...x)) / 255;
    const weight = (name: 'y1' | 'y2', kk: number, nn: number) => (name === 'y1' ? w1[kk * n + nn]! : w2t[nn * k + kk]!);
    for (const name of ['y1', 'y2'] as const) {
      let worst = 0;
      for (let nn = 0; nn < n; nn++) {
        let peak = 0;
        for (let kk = 0; kk < k; kk++) peak = Math.max(peak, Math.abs(weight(name, kk, nn)));
        const ws = peak / 127;
        for (let mm = 0; mm < m; mm++) {
          let bound = 1e-4;
          for (let kk = 0; kk < k; kk++) bound += xs * Math.abs(weight(name, kk, nn)) + Math.abs(x[mm * k + kk]!) * ws / 2 + xs * ws / 2;
          const d = Math.abs((a[name]!.data as Float32Array)[mm * n + nn]! - (b[name]!.data as Float32Array)[mm * n + nn]!);
          assert.ok(d <= bound, `${name}[${mm},${nn}]: |Δ| ${d} over the bound ${bound}`);
          worst = Math.max(worst, d / bound);
        }
      }
      assert.ok(worst > 0.01, `${name}: the int8 result should differ from float32 at all (worst ${worst} of the bound)`);
    }
  });

  test('a tiny CLIP package: int8 package with every file, model.yaml and quantize.json; embeddings agree with float32', async () => {
    const out = path.join(work, 'clip-int8');
    const r = matchd(['model', 'quantize', clipPkg, '--out', out, '--min-elements', '1024']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /int8 package written/);
    assert.match(r.stdout, /sample vs float32: image embedding cosine 0\.99\d+/);
    assert.match(r.stderr, /quantize: vision_model\.onnx: \d+ of \d+ weight products to int8/);
    assert.deepEqual(fs.readdirSync(work).filter((f) => f.startsWith('.')), [], 'no temporary folder left');
    const src = parse(fs.readFileSync(path.join(clipPkg, 'model.yaml'), 'utf8'));
    const manifest = parse(fs.readFileSync(path.join(out, 'model.yaml'), 'utf8'));
    assert.equal(manifest.name, `${src.name}-int8`);
    assert.match(manifest.description, /int8 weights/);
    assert.deepEqual({ ...manifest, name: src.name, description: src.description }, src, 'nothing else in model.yaml changes');
    const files = fs.readdirSync(out).sort();
    assert.deepEqual(files, [src.image.model, 'model.yaml', 'quantize.json', src.text.model, 'tokenizer.json'].sort());
    const report = JSON.parse(fs.readFileSync(path.join(out, 'quantize.json'), 'utf8'));
    for (const key of ['image.model', 'text.model']) {
      const g = report.graphs[key];
      assert.ok(g.quantized >= 8, `${key}: ${g.quantized} products quantized`);
      const kept = g.products.filter((p: { kept?: string }) => p.kept);
      assert.deepEqual(kept.map((p: { kept: string }) => p.kept), ['output projection (kept float32 for accuracy)'], key);
      assert.equal(ops(path.join(out, key === 'image.model' ? src.image.model : src.text.model)).MatMulInteger, g.quantized);
    }
    assert.ok(report.sample.image > 0.99 && report.sample.text > 0.99, JSON.stringify(report.sample));

    // Correctness bounds for a width-64 model (sums of 64 terms average little rounding away, and the fixture's
    // sharpened attention amplifies it); a wrong scale or layout lands far outside them. The accuracy targets for a
    // full-size model are measured by bench/quantize.ts on the ViT-B/32-shaped benchmark model.
    const images = await sampleImages(4);
    const texts = ['a photo of a dog', 'a red car', 'two people on a beach', 'a bowl of soup'];
    assertAgree(await embed(clipPkg, images, texts), await embed(out, images, texts), 0.99, 0.05);
  });

  test('a tiny GME package (external data): int8 graphs keep external data, weights: int8, embeddings agree', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'gme-'));
    const pkg = importPackage(makeCheckpoint(path.join(dir, 'ckpt'), { seed: 3 }), path.join(dir, 'pkg'));
    const out = path.join(dir, 'pkg-int8');
    const r = matchd(['model', 'quantize', pkg, '--out', out, '--min-elements', '256']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(out).sort(),
      ['decoder.onnx', 'decoder.onnx.data', 'import.json', 'model.yaml', 'quantize.json', 'tokenizer.json', 'vision.onnx', 'vision.onnx.data']);
    const manifest = parse(fs.readFileSync(path.join(out, 'model.yaml'), 'utf8'));
    assert.equal(manifest.gme.weights, 'int8');
    const report = JSON.parse(fs.readFileSync(path.join(out, 'quantize.json'), 'utf8'));
    assert.equal(report.graphs['gme.decoder.model'].externalData, 'decoder.onnx.data');
    assert.ok(report.graphs['gme.decoder.model'].quantized > 0 && report.graphs['gme.vision.model'].quantized > 0);
    // The weights live in the .data files; the graphs stay small.
    for (const g of ['vision.onnx', 'decoder.onnx']) assert.ok(fs.statSync(path.join(out, g)).size < 200_000, g);
    const images = await sampleImages(2);
    const texts = ['a cat', 'a small red boat on the sea'];
    assertAgree(await embed(pkg, images, texts), await embed(out, images, texts), 0.99, 0.05);
  });

  describe('bad input', () => {
    test('usage mistakes exit 2', () => {
      assert.equal(matchd(['model', 'quantize', clipPkg]).code, 2, 'no --out');
      assert.equal(matchd(['model', 'quantize', '--out', path.join(work, 'x')]).code, 2, 'no package');
      assert.equal(matchd(['model', 'quantize', clipPkg, '--out', path.join(work, 'x'), '--min-elements', '0']).code, 2);
      assert.equal(matchd(['model', 'quantize', clipPkg, '--out', clipPkg, '--force']).code, 2, '--out is the package');
      assert.ok(!fs.existsSync(path.join(work, 'x')));
    });

    test('not a package, an existing --out, an int8 package, a float16 package, a corrupt graph: coded, nothing written', () => {
      const parent = fs.mkdtempSync(path.join(work, 'bad-'));
      expectRefused([path.join(repoRoot, 'samples'), '--out', path.join(parent, 'o')], parent, 'MATCHD_MODEL_INVALID', /model\.yaml: not found/);

      const taken = path.join(parent, 'taken');
      fs.mkdirSync(taken);
      fs.writeFileSync(path.join(taken, 'keep.txt'), 'mine');
      expectRefused([clipPkg, '--out', taken], parent, 'MATCHD_BAD_OPTION', /exists and is not empty \(use --force/);
      assert.equal(fs.readFileSync(path.join(taken, 'keep.txt'), 'utf8'), 'mine');

      const int8 = path.join(parent, 'int8');
      assert.equal(matchd(['model', 'quantize', clipPkg, '--out', int8, '--min-elements', '1024']).code, 0);
      expectRefused([int8, '--out', path.join(parent, 'twice')], parent, 'MATCHD_MODEL_INVALID', /already quantized \(it has DynamicQuantizeLinear, MatMulInteger nodes\)/);

      const half = importPackage(makeCheckpoint(path.join(parent, 'ckpt16'), { seed: 4 }), path.join(parent, 'gme16'), 'float16');
      expectRefused([half, '--out', path.join(parent, 'o')], parent, 'MATCHD_MODEL_INVALID', /has float16 weights .*quantize the float32 package instead/);

      const corrupt = path.join(parent, 'corrupt');
      fs.cpSync(clipPkg, corrupt, { recursive: true });
      const textModel = parse(fs.readFileSync(path.join(corrupt, 'model.yaml'), 'utf8')).text.model;
      fs.writeFileSync(path.join(corrupt, textModel), 'not a model at all');
      // The image graph is quantized first; the failure on the text graph must remove it too.
      expectRefused([corrupt, '--out', path.join(parent, 'o'), '--min-elements', '1024'], parent, 'MATCHD_MODEL_INVALID', /not a readable ONNX model/);
    });

    test('no Python with numpy and onnx: MATCHD_PYTHON_MISSING with the fix', () => {
      const r = matchd(['model', 'quantize', clipPkg, '--out', path.join(work, 'nopython')], { MATCHD_PYTHON: path.join(work, 'no-such-python') });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /MATCHD_PYTHON_MISSING: .*apt-get install python3-numpy python3-onnx/s);
      assert.ok(!fs.existsSync(path.join(work, 'nopython')));
    });
  });

  test('interrupted (SIGTERM while quantizing): --out keeps its old content, nothing is left beside it', async () => {
    const parent = fs.mkdtempSync(path.join(work, 'kill-'));
    const out = path.join(parent, 'pkg');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'old.txt'), 'previous package');
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), 'model', 'quantize', clipPkg, '--out', out, '--force', '--min-elements', '1024'], {
      env: { ...process.env, MATCHD_PYTHON: python }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const killed = new Promise<void>((resolve) => child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
      if (/weight products to int8/.test(stderr) && !child.killed) {
        child.kill('SIGTERM');
        resolve();
      }
    }));
    const [code] = await Promise.all([new Promise<number | null>((resolve) => child.on('close', resolve)), killed]);
    assert.notEqual(code, 0, stderr);
    assert.deepEqual(fs.readdirSync(parent), ['pkg'], 'no partial folder beside --out');
    assert.deepEqual(fs.readdirSync(out), ['old.txt']);
  });
});
