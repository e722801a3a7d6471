// Runs happen on engine threads: many at once stay correct, the event loop keeps turning, and a run does not wait
// behind a busy libuv pool (where image decoding and file reads queue).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { openSession } from '../fixtures/engine.ts';
import { randomFloat32 } from '../fixtures/onnx-builder.ts';
import { affineModel, cleanupTmpDirs, slowModel, tmpDir } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

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

  test('a load and a run finish while every libuv pool thread is blocked', { timeout: 30_000 }, async () => {
    // Each read of a FIFO with no writer blocks one libuv thread in open(); one per pool thread fills the pool, and a
    // stat queued behind them proves it stayed full while the engine worked.
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const fifos = Array.from({ length: poolSize }, (_, i) => path.join(dir, `blocker-${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const reads = fifos.map((f) => fs.promises.readFile(f));
    await new Promise((r) => setTimeout(r, 50));
    let statDone = false;
    const stat = fs.promises.stat(dir).then(() => (statDone = true));
    const m = affineModel(dir, { inDim: 16, outDim: 8, seed: 9 });
    const s = await openSession(m.path, { intraOpThreads: 1 });
    const x = randomFloat32(3 * 16, 4);
    const out = await s.run({ x: { type: 'float32', dims: [3, 16], data: x } });
    assert.equal(statDone, false, 'the pool was free after all: this test proves nothing');
    const ref = m.reference(x, 3);
    for (let k = 0; k < ref.length; k++) assert.ok(Math.abs((out.y!.data as Float32Array)[k]! - ref[k]!) < 1e-5);
    s.dispose();
    for (const f of fifos) fs.closeSync(fs.openSync(f, 'w')); // a writer that closes at once: each read sees EOF
    await Promise.all([...reads, stat]);
  });

  test('process.exit() while a run is in flight: a clean exit, ONNX Runtime stopped before its statics are destroyed', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test', 'fixtures', 'exit-during-run.ts'), dir], {
      cwd: repoRoot, encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'exiting\n', 'the run should still have been going at the exit');
    // Without the exit hook, the run goes on while exit() destroys ORT's static objects, and ORT reports the wreck.
    assert.doesNotMatch(r.stderr, /onnxruntime|ExecuteKernel/);
  });
});
