// `matchd model import` and `matchd model inspect` as a user runs them: a real process on real model folders.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { copyModel, hfModel } from '../fixtures/hf-models.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot, samplesDir } from '../fixtures/packages.ts';

function matchd(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli: matchd model', () => {
  let work: string;
  let siglip: string;
  before(() => {
    work = tmpDir('matchd-cli-model-');
    siglip = hfModel({ family: 'siglip', logitScale: 7.5, logitBias: -0.75 });
  });
  after(cleanupTmpDirs);

  test('import, then score with the package and inspect it: the missing calibration is said', () => {
    const out = path.join(work, 'siglip');
    const r = matchd('model', 'import', siglip, '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^imported .* → .*siglip/m);
    assert.match(r.stdout, /score: sigmoid\(7\.5 · cosine − 0\.75\)/);
    const scored = matchd('score', path.join(samplesDir, 'red.jpg'), 'a red object', '--model', out, '--json');
    assert.equal(scored.code, 0, scored.stderr);
    assert.equal(JSON.parse(scored.stdout).results.length, 1);
    const inspect = matchd('model', 'inspect', out);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /^package: /);
    assert.match(inspect.stdout, /image: 224×224, squash, bicubic/);
    assert.match(inspect.stdout, /text: max 64 tokens, padding max_length with id 1/);
    assert.match(inspect.stdout, /calibration: NONE/);
    assert.match(inspect.stdout, /image\.model: vision_model\.onnx \([\d.]+ MB\): pixel_values float32 \[batch_size, 3, 224, 224\] → pooler_output/);
    const json = JSON.parse(matchd('model', 'inspect', out, '--json').stdout);
    assert.equal(json.calibrated, false);
    assert.equal(json.manifest.score.mapping, 'sigmoid');
  });

  test('inspect a model folder: what an import would make, nothing written; a calibrated package says nothing of calibration', () => {
    const before = fs.readdirSync(siglip).sort();
    const r = matchd('model', 'inspect', siglip);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /importable \(nothing written\)/);
    assert.match(r.stdout, /logits: exp\(logit_scale\) = 7\.5, logit_bias = -0\.75 \(model\.onnx: exp\(logit_scale\), logit_bias\)/);
    assert.deepEqual(fs.readdirSync(siglip).sort(), before);
    const demo = matchd('model', 'inspect', demoDir);
    assert.equal(demo.code, 0, demo.stderr);
    assert.doesNotMatch(demo.stdout, /calibration: NONE/);
  });

  test('bad folders exit 1 with MATCHD_MODEL_INVALID and every problem; bad usage exits 2', () => {
    const bad = copyModel(siglip, work, 'bad');
    fs.rmSync(path.join(bad, 'tokenizer.json'));
    fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ model_type: 'owlvit' }));
    const r = matchd('model', 'import', bad, '--out', path.join(work, 'never'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MATCHD_MODEL_INVALID: cannot import .*:\n {2}- config\.json: model_type "owlvit"[\s\S]*tokenizer\.json: missing/);
    assert.ok(!fs.existsSync(path.join(work, 'never')));
    const unknown = matchd('model', 'import', samplesDir, '--out', path.join(work, 'never'));
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /MATCHD_MODEL_INVALID: cannot import .*not a folder any importer understands/);
    assert.equal(matchd('model', 'import', siglip).code, 2, 'no --out');
    assert.equal(matchd('model', 'import', siglip, '--out', path.join(work, 'x'), '--variant', 'int4').code, 2);
    assert.equal(matchd('model', 'import', siglip, '--out', path.join(work, 'x'), '--logit-scale', 'big').code, 2);
    assert.equal(matchd('model', 'frobnicate').code, 2);
  });

  test('--logit-scale / --logit-bias calibrate a SigLIP folder that has no combined model', () => {
    const split = copyModel(siglip, work, 'split-only');
    fs.rmSync(path.join(split, 'onnx', 'model.onnx'));
    const plain = matchd('model', 'inspect', split);
    assert.match(plain.stdout, /logits: none found/);
    assert.match(plain.stdout, /score: linear/);
    const out = path.join(work, 'given');
    const r = matchd('model', 'import', split, '--out', out, '--logit-scale', '117.33', '--logit-bias=-12.93');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /score: sigmoid\(117\.33 · cosine − 12\.93\)/);
    assert.match(r.stdout, /given on the command line/);
  });
});
