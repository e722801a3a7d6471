// Runs happen on the libuv pool: many at once stay correct, and the event loop keeps turning.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { openSession } from '../fixtures/engine.ts';
import { randomFloat32 } from '../fixtures/onnx-builder.ts';
import { affineModel, cleanupTmpDirs, slowModel, tmpDir } from '../fixtures/models.ts';

describe('engine: concurrency', () => {
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(cleanupTmpDirs);

  test('16 concurrent runs with different inputs all return their own correct result', async () => {
    const m = affineModel(dir, { inDim: 32, outDim: 16 });
    const s = await openSession(m.path, { intraOpThreads: 1 });
    const inputs = Array.from({ length: 16 }, (_, i) => ({ batch: 1 + (i % 5), x: randomFloat32((1 + (i % 5)) * 32, 100 + i) }));
    const pending = inputs.map(({ batch, x }) => s.run({ x: { type: 'float32', dims: [batch, 32], data: x } }));
    assert.equal(s.activeRuns, 16);
    const results = await Promise.all(pending);
    assert.equal(s.activeRuns, 0);
    results.forEach((out, i) => {
      const ref = m.reference(inputs[i]!.x, inputs[i]!.batch);
      const got = out.y!.data as Float32Array;
      assert.equal(got.length, ref.length);
      for (let k = 0; k < ref.length; k++) assert.ok(Math.abs(got[k]! - ref[k]!) < 1e-5, `run ${i} element ${k}`);
    });
    s.dispose();
  });

  test('a timer keeps firing while a long inference runs', async () => {
    const m = slowModel(dir);
    const s = await openSession(m.path, { intraOpThreads: 1 });
    const x = randomFloat32(m.shape[0] * m.shape[1], 5, 0.1);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 1);
    const start = performance.now();
    let end = 0;
    await s.run({ x: { type: 'float32', dims: m.shape, data: x } }).then(() => {
      end = performance.now();
    });
    clearInterval(timer);
    // A run on the event loop would block it for the whole inference: no tick could land strictly inside.
    const inside = ticks.filter((t) => t > start && t < end).length;
    assert.ok(inside >= 3, `expected timer ticks during the ${(end - start).toFixed(0)} ms run, got ${inside}`);
    s.dispose();
  });

  test('dispose() is refused while runs are in flight, then works', async () => {
    const m = slowModel(dir, { size: 256, repeats: 20 });
    const s = await openSession(m.path, { intraOpThreads: 1 });
    const run = s.run({ x: { type: 'float32', dims: m.shape, data: randomFloat32(256 * 256, 1, 0.1) } });
    assert.throws(() => s.dispose(), (e: any) => e.code === 'MATCHD_SESSION_BUSY' && /in flight/.test(e.message));
    await run;
    s.dispose();
    assert.equal(s.disposed, true);
    assert.equal(s.provider, null);
  });
});
