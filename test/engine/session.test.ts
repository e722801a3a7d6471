// Numeric parity of the engine with JS references, per element type, dynamic batch and output modes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openSession, testProvider } from '../fixtures/engine.ts';
import { toFloat16Array, randomFloat32 } from '../fixtures/onnx-builder.ts';
import { affineModel, cleanupTmpDirs, fp16Model, int64Model, mixedTypesModel, tmpDir } from '../fixtures/models.ts';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('engine: session', () => {
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(cleanupTmpDirs);

  test('exposes input/output names, element types and shapes with dynamic dims as null', async () => {
    const s = await openSession(affineModel(dir).path);
    assert.deepEqual(s.inputs, [{ name: 'x', type: 'float32', shape: [null, 8], dimNames: ['batch', null] }]);
    assert.deepEqual(s.outputs, [{ name: 'y', type: 'float32', shape: [null, 4], dimNames: ['batch', null] }]);
    assert.equal(s.provider, testProvider);
    assert.equal(s.activeRuns, 0);
    s.dispose();
  });

  test('float32: matches the JS reference, for several batch sizes on one session', async () => {
    const m = affineModel(dir, { inDim: 64, outDim: 32 });
    const s = await openSession(m.path);
    for (const batch of [1, 5, 17]) {
      const x = randomFloat32(batch * 64, batch);
      const out = await s.run({ x: { type: 'float32', dims: [batch, 64], data: x } });
      assert.equal(out.y!.type, 'float32');
      assert.deepEqual(out.y!.dims, [batch, 32]);
      assert.ok(out.y!.data instanceof Float32Array);
      assert.ok(maxAbsDiff(out.y!.data as Float32Array, m.reference(x, batch)) < 1e-5);
    }
    s.dispose();
  });

  test('float16 in and out as Uint16Array: bit-exact with the reference', async () => {
    const m = fp16Model(dir);
    const s = await openSession(m.path);
    const x = toFloat16Array([0, -0, 1, -1.5, 0.333, 65504 / 4, 1e-5, -2.25, 7, 100, 0.1, -0.1]);
    const out = await s.run({ x: { type: 'float16', dims: [2, 6], data: x } });
    const ref = m.reference(x);
    assert.equal(out.y!.type, 'float16');
    assert.ok(out.y!.data instanceof Uint16Array);
    assert.deepEqual(Array.from(out.y!.data as Uint16Array), Array.from(ref.y));
    assert.ok(maxAbsDiff(out.y32!.data as Float32Array, ref.y32) === 0);
    s.dispose();
  });

  test('int64 input (BigInt64Array) through Gather + ReduceMean', async () => {
    const m = int64Model(dir);
    const s = await openSession(m.path);
    const ids = BigInt64Array.from([0n, 3n, 15n, 2n, 2n, 2n, 9n, 1n, 0n], (v) => v);
    const out = await s.run({ ids: { type: 'int64', dims: [3, 3], data: ids } });
    assert.ok(maxAbsDiff(out.emb!.data as Float32Array, m.reference(ids, 3, 3)) < 1e-6);
    s.dispose();
  });

  test('int32 and uint8 inputs, int32 output', async () => {
    const m = mixedTypesModel(dir);
    const s = await openSession(m.path);
    const a = Int32Array.from([1, -2, 3, 2 ** 24 + 1, 0, 2 ** 30]);
    const b = Uint8Array.from([255, 0, 1, 2, 3, 4]);
    const out = await s.run({ a: { type: 'int32', dims: [2, 3], data: a }, b: { type: 'uint8', dims: [2, 3], data: b } });
    const ref = m.reference(a, b);
    assert.deepEqual(Array.from(out.sum!.data as Float32Array), Array.from(ref.sum));
    assert.ok(out.a2!.data instanceof Int32Array);
    assert.deepEqual(Array.from(out.a2!.data as Int32Array), Array.from(ref.a2));
    s.dispose();
  });

  test('fetches only the outputs asked for by name', async () => {
    const s = await openSession(fp16Model(dir).path);
    const out = await s.run({ x: { type: 'float16', dims: [1, 6], data: toFloat16Array([1, 2, 3, 4, 5, 6]) } }, ['y32']);
    assert.deepEqual(Object.keys(out), ['y32']);
    assert.deepEqual(Array.from(out.y32!.data as Float32Array), [2.5, 4.5, 6.5, 8.5, 10.5, 12.5]);
    s.dispose();
  });

  test('writes into caller-provided output buffers (the same object comes back)', async () => {
    const m = affineModel(dir);
    const s = await openSession(m.path);
    const x = randomFloat32(3 * 8, 42);
    const y = new Float32Array(3 * 4).fill(NaN);
    const target = { type: 'float32' as const, dims: [3, 4], data: y };
    const out = await s.run({ x: { type: 'float32', dims: [3, 8], data: x } }, { y: target });
    assert.equal(out.y, target);
    assert.equal(out.y!.data, y);
    assert.ok(maxAbsDiff(y, m.reference(x, 3)) < 1e-5);
    s.dispose();
  });

  test('an input over part of a larger buffer (byteOffset) is read in place', async () => {
    const m = affineModel(dir);
    const s = await openSession(m.path);
    const backing = randomFloat32(4 * 8, 7);
    const view = new Float32Array(backing.buffer, 8 * 4, 2 * 8); // rows 1..2
    const out = await s.run({ x: { type: 'float32', dims: [2, 8], data: view } });
    assert.ok(maxAbsDiff(out.y!.data as Float32Array, m.reference(backing.slice(8, 24), 2)) < 1e-5);
    s.dispose();
  });

  test('native versions report ONNX Runtime 1.29.0', async () => {
    const { addon } = await import('../../src/core/native.ts');
    const v = addon().versions();
    assert.equal(v.onnxruntime, '1.29.0');
    assert.ok(v.providers.includes('CPUExecutionProvider'));
  });
});
