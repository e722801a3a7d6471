// `matchd model import` as a user runs it: tiny random Qwen2-VL checkpoints (F32 single file; BF16 sharded in the
// newer key layout) -> a package whose files, model.yaml and import.json are checked; bad checkpoints -> every problem
// listed under MATCHD_MODEL_INVALID with nothing left in or beside --out; no Python -> a coded message.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { openSession } from '../fixtures/engine.ts';
import { gmeTools, makeCheckpoint, matchd, prompt, python, tokenize, type CheckpointOptions } from '../fixtures/gme.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A fresh checkpoint and an empty parent folder for --out. */
function setup(options: CheckpointOptions = {}): { ckpt: string; parent: string; out: string } {
  const dir = tmpDir('matchd-gme-import-');
  const parent = path.join(dir, 'packages');
  fs.mkdirSync(parent);
  return { ckpt: makeCheckpoint(path.join(dir, 'ckpt'), options), parent, out: path.join(parent, 'pkg') };
}

/** Rewrite one safetensors header in place (the edit must keep the header's byte length). */
function editHeader(file: string, edit: (h: Record<string, any>) => void): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  const raw = Buffer.from(JSON.stringify(header));
  assert.ok(raw.length <= n, 'edited header grew');
  Buffer.concat([raw, Buffer.alloc(n - raw.length, 0x20)]).copy(buf, 8);
  fs.writeFileSync(file, buf);
}

/** Run an import that must fail with `code`; every `problems` pattern must be listed, and nothing written. */
function expectInvalid(ckpt: string, parent: string, out: string, problems: RegExp[], code = 'MATCHD_MODEL_INVALID'): string {
  const r = matchd(['model', 'import', ckpt, '--out', out]);
  assert.equal(r.code, 1, r.stderr);
  const message = r.stderr.slice(r.stderr.indexOf(`matchd: ${code}: `));
  assert.ok(message.startsWith(`matchd: ${code}: `), r.stderr);
  for (const p of problems) assert.match(message, p);
  assert.deepEqual(fs.readdirSync(parent), [], 'nothing may be left in or beside --out');
  return message;
}

describe('gme: matchd model import', () => {
  after(cleanupTmpDirs);

  test('a tiny F32 checkpoint -> a float32 package: files, model.yaml, import.json, graphs ORT loads', async () => {
    const { ckpt, parent, out } = setup({ seed: 1 });
    const r = matchd(['model', 'import', ckpt, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model package written/);
    assert.match(r.stderr, /import: decoder layer 2\/2/); // progress is relayed
    assert.deepEqual(fs.readdirSync(parent), ['pkg']); // no temporary folder left beside it
    assert.deepEqual(fs.readdirSync(out).sort(),
      ['decoder.onnx', 'decoder.onnx.data', 'import.json', 'model.yaml', 'tokenizer.json', 'vision.onnx', 'vision.onnx.data']);
    assert.equal(sha256(path.join(out, 'tokenizer.json')), sha256(path.join(ckpt, 'tokenizer.json')));

    const m = parse(fs.readFileSync(path.join(out, 'model.yaml'), 'utf8'));
    assert.equal(m.family, 'gme-qwen2-vl');
    assert.equal(m.name, 'ckpt');
    assert.equal(m.embeddingSize, 32);
    assert.equal(m.normalized, true);
    assert.deepEqual(m.gme.vision, { model: 'vision.onnx', pixelValues: 'pixel_values', positionIds: 'position_ids', output: 'image_embeds' });
    assert.deepEqual(m.gme.decoder, { model: 'decoder.onnx', inputIds: 'input_ids', attentionMask: 'attention_mask', imageEmbeds: 'image_embeds', output: 'embeddings' });
    assert.equal(m.gme.weights, 'float32');
    assert.deepEqual(m.gme.image, {
      patchSize: 14, temporalPatchSize: 2, mergeSize: 2, mean: [0.48145466, 0.4578275, 0.40821073],
      std: [0.26862954, 0.26130258, 0.27577711], minPixels: 200704, maxPixels: 1003520, fetchMinPixels: 3136,
      fetchMaxPixels: 12845056, maxAspectRatio: 200, exifOrientation: true,
    });
    assert.deepEqual(m.gme.text, {
      maxLength: 1800, padId: 151643, imagePadId: 151655,
      template: '<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{vision}{text}<|im_end|>\n<|im_start|>assistant\n<|endoftext|>',
      vision: '<|vision_start|><|image_pad|><|vision_end|>',
      queryInstruction: 'Find an image that matches the given text.', documentInstruction: 'You are a helpful assistant.',
    });
    assert.deepEqual(m.score, { range: [0.1, 0.5] });

    const prov = JSON.parse(fs.readFileSync(path.join(out, 'import.json'), 'utf8'));
    assert.equal(prov.dtype, 'float32');
    assert.equal(prov.source.dir, ckpt);
    assert.equal(prov.source.configSha256, sha256(path.join(ckpt, 'config.json')));
    assert.equal(prov.source.keyLayout, 'legacy');
    assert.deepEqual(prov.source.tensorDtypes, ['F32']);
    assert.deepEqual(prov.source.files.map((f: { name: string }) => f.name), ['model.safetensors']);
    assert.equal(prov.exporter.version, '1');
    assert.ok(Date.now() - Date.parse(prov.createdAt) < 10 * 60_000);

    // The contract's IO, float32/int64 at the boundary.
    const vision = await openSession(path.join(out, 'vision.onnx'));
    const decoder = await openSession(path.join(out, 'decoder.onnx'));
    try {
      assert.deepEqual(vision.inputs.map((i) => [i.name, i.type]), [['pixel_values', 'float32'], ['position_ids', 'int64']]);
      assert.deepEqual(vision.outputs.map((o) => [o.name, o.type]), [['image_embeds', 'float32']]);
      assert.deepEqual(decoder.inputs.map((i) => [i.name, i.type]), [['input_ids', 'int64'], ['attention_mask', 'int64'], ['image_embeds', 'float32']]);
      assert.deepEqual(decoder.outputs.map((o) => [o.name, o.type]), [['embeddings', 'float32']]);
    } finally {
      vision.dispose();
      decoder.dispose();
    }
  });

  test('a BF16 checkpoint in 3 shards, newer key layout, untied lm_head -> a float16 package, IO still float32', async () => {
    const { ckpt, out } = setup({ seed: 2, dtype: 'BF16', shards: 3, layout: 'new', untied: true });
    const r = matchd(['model', 'import', ckpt, '--out', out, '--dtype', 'float16']);
    assert.equal(r.code, 0, r.stderr);
    const m = parse(fs.readFileSync(path.join(out, 'model.yaml'), 'utf8'));
    assert.equal(m.gme.weights, 'float16');
    assert.match(m.description, /\(float16\)$/);
    const prov = JSON.parse(fs.readFileSync(path.join(out, 'import.json'), 'utf8'));
    assert.equal(prov.dtype, 'float16');
    assert.equal(prov.source.keyLayout, 'new');
    assert.equal(prov.source.tiedEmbeddings, false);
    assert.deepEqual(prov.source.tensorDtypes, ['BF16']);
    assert.equal(prov.source.files.length, 3);
    // float16 weights: the embedding table alone is 151936 x 32 x 2 bytes
    const data = fs.statSync(path.join(out, 'decoder.onnx.data')).size;
    assert.ok(data > 151936 * 32 * 2 && data < 151936 * 32 * 4, `decoder.onnx.data is ${data} bytes`);
    const decoder = await openSession(path.join(out, 'decoder.onnx'));
    try {
      assert.deepEqual(decoder.inputs.map((i) => i.type), ['int64', 'int64', 'float32']);
      assert.deepEqual(decoder.outputs.map((o) => o.type), ['float32']);
    } finally {
      decoder.dispose();
    }
  });

  test('the tiny checkpoint\'s tokenizer.json: Qwen2\'s special tokens encode to Qwen2\'s ids with the npm tokenizers', async () => {
    const { ckpt } = setup();
    const t = await tokenize(path.join(ckpt, 'tokenizer.json'), [prompt({ image: 2 }), prompt({ text: 'a red cat' })]);
    const row = (b: number) => Array.from(t.ids.subarray(b * t.dims[1], (b + 1) * t.dims[1]), Number)
      .filter((_, j) => t.mask[b * t.dims[1] + j] === 1n);
    const special = (ids: number[]) => ids.filter((id) => id >= 151643);
    assert.deepEqual(special(row(0)), [151644, 151645, 151644, 151652, 151655, 151655, 151653, 151645, 151644, 151643]);
    assert.deepEqual(special(row(1)), [151644, 151645, 151644, 151645, 151644, 151643]);
    assert.ok(row(1).length > 10 && row(1).every((id) => id < 1000 || id >= 151643), 'text pieces are byte-level BPE ids');
  });

  test('a non-empty --out is refused (MATCHD_BAD_OPTION) and left alone; --force replaces it', () => {
    const { ckpt, out } = setup({ seed: 3 });
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep.txt'), 'mine');
    const r = matchd(['model', 'import', ckpt, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MATCHD_BAD_OPTION: --out .* exists and is not empty; pass --force to replace it/);
    assert.deepEqual(fs.readdirSync(out), ['keep.txt']);
    const forced = matchd(['model', 'import', ckpt, '--out', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(!fs.existsSync(path.join(out, 'keep.txt')) && fs.existsSync(path.join(out, 'decoder.onnx')));
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ['pkg']);
  });

  test('bad call: --dtype must be float32 or float16 (usage error, exit 2)', () => {
    const r = matchd(['model', 'import', 'x', '--out', 'y', '--dtype', 'int8']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Expected float32 or float16 for --dtype but received "int8"/);
  });

  describe('bad checkpoints -> MATCHD_MODEL_INVALID listing every problem, nothing written', () => {
    test('a missing tensor', () => {
      const { ckpt, parent, out } = setup({ omit: ['model.layers.1.mlp.up_proj.weight'] });
      expectInvalid(ckpt, parent, out, [/model\.layers\.1\.mlp\.up_proj\.weight: missing \(expected shape \[64, 32\]\)/]);
    });

    test('a tensor of the wrong shape', () => {
      const { ckpt, parent, out } = setup({ shape: { 'visual.blocks.0.attn.qkv.weight': [96, 31] } });
      expectInvalid(ckpt, parent, out, [/visual\.blocks\.0\.attn\.qkv\.weight: wrong shape \[96, 31\], expected \[96, 32\]/]);
    });

    test('an unknown architecture (named, with what is supported)', () => {
      const { ckpt, parent, out } = setup();
      const file = path.join(ckpt, 'config.json');
      fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), architectures: ['Qwen2_5_VLForConditionalGeneration'], model_type: 'qwen2_5_vl' }));
      expectInvalid(ckpt, parent, out, [/unknown architecture Qwen2_5_VLForConditionalGeneration \(supported: Qwen2VLForConditionalGeneration; /]);
    });

    test('a corrupt safetensors header', () => {
      const { ckpt, parent, out } = setup();
      const file = path.join(ckpt, 'model.safetensors');
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.from('#garbage#'), 0, 9, 8);
      fs.closeSync(fd);
      expectInvalid(ckpt, parent, out, [/model\.safetensors: corrupt safetensors header: not valid JSON/, /could not be checked because their file is unreadable/]);
    });

    test('a truncated file', () => {
      const { ckpt, parent, out } = setup();
      const file = path.join(ckpt, 'model.safetensors');
      fs.truncateSync(file, fs.statSync(file).size - 100);
      expectInvalid(ckpt, parent, out, [/model\.safetensors: model\.norm\.weight: data ends at byte \d+ but the file has only \d+ bytes \(truncated file\?\)/]);
    });

    test('several problems at once: all of them listed in one report', () => {
      const { ckpt, parent, out } = setup({
        shards: 3, untied: true, omit: ['model.norm.weight'], shape: { 'model.layers.0.self_attn.k_proj.weight': [16, 31] },
      });
      const shard = (i: number) => path.join(ckpt, `model-0000${i}-of-00003.safetensors`);
      editHeader(shard(2), (h) => { h['model.layers.1.mlp.up_proj.weight'].dtype = 'I32'; });
      fs.truncateSync(shard(3), fs.statSync(shard(3)).size - 4);
      fs.rmSync(path.join(ckpt, 'tokenizer.json'));
      const config = JSON.parse(fs.readFileSync(path.join(ckpt, 'config.json'), 'utf8'));
      config.vision_config.hidden_act = 'gelu';
      fs.writeFileSync(path.join(ckpt, 'config.json'), JSON.stringify(config));
      const message = expectInvalid(ckpt, parent, out, [
        /6 problems:/,
        /vision_config\.hidden_act 'gelu' is not supported/,
        /tokenizer\.json: missing/,
        /model-00002-of-00003\.safetensors: model\.layers\.1\.mlp\.up_proj\.weight: unsupported dtype 'I32'/,
        /model-00003-of-00003\.safetensors: lm_head\.weight: data ends at byte \d+ but the file has only \d+ bytes/,
        /model\.norm\.weight: missing \(expected shape \[32\]\)/,
        /model\.layers\.0\.self_attn\.k_proj\.weight: wrong shape \[16, 31\], expected \[16, 32\]/,
      ]);
      assert.equal(message.match(/\n {2}- /g)?.length, 6, message);
    });
  });

  test('no Python with the modules: MATCHD_PYTHON_MISSING says what was tried and what to install', () => {
    const { ckpt, parent, out } = setup();
    const r = matchd(['model', 'import', ckpt, '--out', out], { MATCHD_PYTHON: '/nonexistent/python3' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MATCHD_PYTHON_MISSING: .*numpy, onnx\. Tried: \/nonexistent\/python3 \(not found\)/);
    assert.match(r.stderr, /apt-get install python3-numpy python3-onnx/);
    assert.deepEqual(fs.readdirSync(parent), []);
    // A real Python 3 that lacks the modules: the test Python without its site-packages (-S).
    const bare = path.join(path.dirname(parent), 'bare-python');
    fs.writeFileSync(bare, `#!/bin/sh\nexec ${python} -S "$@"\n`, { mode: 0o755 });
    const r2 = matchd(['model', 'import', ckpt, '--out', out], { MATCHD_PYTHON: bare });
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /MATCHD_PYTHON_MISSING: .*Tried: .*bare-python \(Python 3\.\d+\.\d+, missing numpy, onnx\)/);
  });

  // The exporter itself, driven from Python so that a failure and an interrupt happen at a known point mid-write.
  describe('export.py never leaves a half-written package', () => {
    function exportWith(ckpt: string, out: string, replacement: string, extra: string[] = []) {
      const code = `import os, signal, sys, time
sys.path.insert(0, ${JSON.stringify(gmeTools)})
import export
def build_decoder(graph, *args):
    graph.weight('partial', __import__('numpy').zeros(1000, 'float32'))
${replacement}
export.build_decoder = build_decoder
sys.exit(export.main(${JSON.stringify([ckpt, '--out', out, ...extra])}))`;
      return spawnSync(python, ['-c', code], { encoding: 'utf8' });
    }

    test('a failure while writing: MATCHD_IMPORT_FAILED, the temporary folder removed', () => {
      const { ckpt, parent, out } = setup();
      const r = exportWith(ckpt, out, "    raise OSError(28, 'No space left on device', 'decoder.onnx.data')");
      assert.equal(r.status, 1);
      assert.deepEqual(JSON.parse(r.stderr.trim().split('\n').pop()!), { code: 'MATCHD_IMPORT_FAILED', problems: ['decoder.onnx.data: No space left on device'] });
      assert.deepEqual(fs.readdirSync(parent), []);
    });

    test('SIGTERM mid-write: exit 130, nothing left; with --force the previous package survives', () => {
      const { ckpt, parent, out } = setup();
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, 'model.yaml'), 'previous package');
      const r = exportWith(ckpt, out, '    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(30)', ['--force']);
      assert.equal(r.status, 130, r.stderr);
      assert.match(r.stderr, /"interrupted; nothing was written"/);
      assert.deepEqual(fs.readdirSync(parent), ['pkg']);
      assert.deepEqual(fs.readdirSync(out), ['model.yaml']);
      assert.equal(fs.readFileSync(path.join(out, 'model.yaml'), 'utf8'), 'previous package');
    });
  });
});
