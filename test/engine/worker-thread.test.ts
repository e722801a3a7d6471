// Native state is per Node environment: the addon loads and runs inside a worker thread too.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { InferenceSession } from '../../src/core/engine.ts';
import { randomFloat32 } from '../fixtures/onnx-builder.ts';
import { affineModel, cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

const workerSource = `
import { workerData, parentPort } from 'node:worker_threads';
const { register } = await import(workerData.tsx);
register();
const { InferenceSession } = await import(workerData.engine);
const s = await InferenceSession.open(workerData.model, { intraOpThreads: 1 });
const x = Float32Array.from(workerData.x);
const out = await s.run({ x: { type: 'float32', dims: [2, 8], data: x } });
s.dispose();
parentPort.postMessage({ y: Array.from(out.y.data), provider: 'cpu' });
`;

describe('engine: worker threads', () => {
  after(cleanupTmpDirs);

  test('a worker thread loads the addon and runs a model while the main thread uses it too', async () => {
    const m = affineModel(tmpDir());
    const x = randomFloat32(16, 9);
    const main = await InferenceSession.open(m.path);
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(workerSource)}`), {
      workerData: {
        tsx: import.meta.resolve('tsx/esm/api'), engine: new URL('../../src/core/engine.ts', import.meta.url).href, model: m.path, x: Array.from(x) },
    });
    const fromWorker = new Promise<{ y: number[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const [w, mainOut] = await Promise.all([fromWorker, main.run({ x: { type: 'float32', dims: [2, 8], data: x } })]);
    await worker.terminate();
    const ref = m.reference(x, 2);
    w.y.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-5));
    assert.deepEqual(w.y, Array.from(mainOut.y!.data as Float32Array));
    main.dispose();
  });
});
