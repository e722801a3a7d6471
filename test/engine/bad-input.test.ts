// Every refused call has its code: missing/corrupt model, wrong dtype/rank/shape/name, bad options, use after dispose.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openSession } from '../fixtures/engine.ts';
import { InferenceSession } from '../../src/core/engine.ts';
import { MatchdError } from '../../src/core/errors.ts';
import { affineModel, cleanupTmpDirs, staticShapeModel, mixedTypesModel, tmpDir, writeCorruptModel } from '../fixtures/models.ts';

const code = (expected: string, pattern?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof MatchdError, `expected a MatchdError, got ${String(e)}`);
  assert.equal(e.code, expected, e.message);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

describe('engine: bad input', () => {
  let dir: string;
  let affine: InferenceSession;
  let fixed: InferenceSession;
  const x = (dims: number[], data: Float32Array = new Float32Array(dims.reduce((a, b) => a * b, 1))) =>
    ({ type: 'float32' as const, dims, data });

  before(async () => {
    dir = tmpDir();
    affine = await openSession(affineModel(dir).path);
    fixed = await openSession(staticShapeModel(dir).path);
  });
  after(() => {
    affine.dispose();
    fixed.dispose();
    cleanupTmpDirs();
  });

  test('missing model file → MATCHD_MODEL_LOAD naming the path', async () => {
    const missing = path.join(dir, 'nope.onnx');
    await assert.rejects(openSession(missing), code('MATCHD_MODEL_LOAD', /nope\.onnx/));
  });

  test('corrupt model file → MATCHD_MODEL_LOAD', async () => {
    await assert.rejects(openSession(writeCorruptModel(dir)), code('MATCHD_MODEL_LOAD', /corrupt\.onnx/));
  });

  test('a directory instead of a model → MATCHD_MODEL_LOAD', async () => {
    await assert.rejects(openSession(dir), code('MATCHD_MODEL_LOAD'));
  });

  test('wrong TypedArray for the declared type → MATCHD_BAD_INPUT', async () => {
    const data = new Float64Array(8) as unknown as Float32Array;
    await assert.rejects(affine.run({ x: { type: 'float32', dims: [1, 8], data } }), code('MATCHD_BAD_INPUT', /Float32Array.*Float64Array/));
  });

  test('declared type differs from the model input type → MATCHD_BAD_INPUT', async () => {
    await assert.rejects(
      affine.run({ x: { type: 'int32', dims: [1, 8], data: new Int32Array(8) } }),
      code('MATCHD_BAD_INPUT', /expects element type float32 but received int32/),
    );
  });

  test('unknown element type name → MATCHD_BAD_INPUT', async () => {
    await assert.rejects(
      affine.run({ x: { type: 'complex64', dims: [1, 8], data: new Float32Array(8) } as never }),
      code('MATCHD_BAD_INPUT', /unsupported element type 'complex64'/),
    );
  });

  test('wrong rank → MATCHD_BAD_INPUT', async () => {
    await assert.rejects(affine.run({ x: x([8]) }), code('MATCHD_BAD_INPUT', /rank 2/));
  });

  test('wrong fixed dimension → MATCHD_BAD_INPUT', async () => {
    await assert.rejects(affine.run({ x: x([2, 7]) }), code('MATCHD_BAD_INPUT', /expects shape/));
    await assert.rejects(fixed.run({ x: x([3, 2]) }), code('MATCHD_BAD_INPUT', /\[2, 3\]/));
  });

  test('data length does not match dims → MATCHD_BAD_INPUT', async () => {
    await assert.rejects(affine.run({ x: x([2, 8], new Float32Array(15)) }), code('MATCHD_BAD_INPUT', /need 16 elements but data has 15/));
  });

  test('negative or fractional dims, non-TypedArray data → MATCHD_BAD_INPUT', async () => {
    await assert.rejects(affine.run({ x: x([-1, 8], new Float32Array(8)) }), code('MATCHD_BAD_INPUT', /non-negative integers/));
    await assert.rejects(affine.run({ x: x([1.5, 8], new Float32Array(8)) }), code('MATCHD_BAD_INPUT'));
    await assert.rejects(affine.run({ x: { type: 'float32', dims: [1, 8], data: [1, 2] as never } }), code('MATCHD_BAD_INPUT', /TypedArray/));
    await assert.rejects(affine.run({ x: 42 as never }), code('MATCHD_BAD_INPUT'));
  });

  test('unknown input name → MATCHD_BAD_INPUT listing the real inputs', async () => {
    await assert.rejects(affine.run({ input: x([1, 8]) }), code('MATCHD_BAD_INPUT', /unknown input 'input'.*inputs are: x/));
  });

  test('missing input → MATCHD_BAD_INPUT', async () => {
    const mixed = await openSession(mixedTypesModel(dir).path);
    await assert.rejects(
      mixed.run({ a: { type: 'int32', dims: [1, 3], data: new Int32Array(3) } }),
      code('MATCHD_BAD_INPUT', /missing input 'b'/),
    );
    mixed.dispose();
  });

  test('unknown output name, bad outputs argument, wrong preallocated shape → MATCHD_BAD_INPUT', async () => {
    await assert.rejects(affine.run({ x: x([1, 8]) }, ['z']), code('MATCHD_BAD_INPUT', /unknown output 'z'/));
    await assert.rejects(affine.run({ x: x([1, 8]) }, 'y' as never), code('MATCHD_BAD_INPUT'));
    await assert.rejects(affine.run({ x: x([1, 8]) }, { y: x([1, 5]) }), code('MATCHD_BAD_INPUT', /output 'y'/));
  });

  test('run after dispose → MATCHD_SESSION_DISPOSED; dispose twice is harmless', async () => {
    const s = await openSession(affineModel(dir).path);
    s.dispose();
    s.dispose();
    await assert.rejects(s.run({ x: x([1, 8]) }), code('MATCHD_SESSION_DISPOSED'));
    assert.throws(() => s.inputs, code('MATCHD_SESSION_DISPOSED'));
  });

  test('bad options are all listed in one MATCHD_BAD_OPTION', async () => {
    const model = affineModel(dir).path;
    await assert.rejects(
      openSession(model, { intraOpThreads: -3, provider: 'tpu' as never, graphOptimizationLevel: 'max' as never, spin: true } as never),
      (e: unknown) => {
        code('MATCHD_BAD_OPTION')(e);
        const m = (e as MatchdError).message;
        assert.match(m, /Expected a non-negative integer <= 1024 for intraOpThreads but received -3/);
        assert.match(m, /provider but received "tpu"/);
        assert.match(m, /graphOptimizationLevel/);
        assert.match(m, /Unknown option engine\.spin/);
        return true;
      },
    );
  });

  test('the Session class cannot be constructed directly', async () => {
    const { addon } = await import('../../src/core/native.ts');
    const Ctor = (addon() as unknown as { Session: new () => unknown }).Session;
    assert.throws(() => new Ctor(), code('MATCHD_BAD_INPUT', /loadSession/));
  });
});
