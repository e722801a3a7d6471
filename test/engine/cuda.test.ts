// CUDA requested where it cannot load: a coded error naming the missing library, or a loud CPU fallback.
// On a GPU machine with the provider set up (MATCHD_TEST_PROVIDER=cuda), the same calls must give a CUDA session.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { InferenceSession, explainCudaFailure } from '../../src/core/engine.ts';
import { MatchdError } from '../../src/core/errors.ts';
import { randomFloat32 } from '../fixtures/onnx-builder.ts';
import { testProvider } from '../fixtures/engine.ts';
import { affineModel, cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

const expectCuda = testProvider === 'cuda';

describe('engine: cuda', () => {
  after(cleanupTmpDirs);

  test(expectCuda ? 'cuda loads and runs (device machine)' : 'cuda requested here → MATCHD_CUDA_UNAVAILABLE naming the missing library', async () => {
    const m = affineModel(tmpDir());
    if (expectCuda) {
      const s = await InferenceSession.open(m.path, { provider: 'cuda' });
      assert.equal(s.provider, 'cuda');
      const x = randomFloat32(4 * 8, 3);
      const out = await s.run({ x: { type: 'float32', dims: [4, 8], data: x } });
      const ref = m.reference(x, 4);
      (out.y!.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-3));
      s.dispose();
      return;
    }
    await assert.rejects(InferenceSession.open(m.path, { provider: 'cuda' }), (e: unknown) => {
      assert.ok(e instanceof MatchdError);
      assert.equal(e.code, 'MATCHD_CUDA_UNAVAILABLE');
      const missing = e.details?.missingLibrary as string;
      assert.match(missing, /^lib[\w.+-]+\.so/, 'the missing library is named');
      assert.ok(e.message.includes(missing));
      assert.match(e.message, /Fix: /);
      return true;
    });
  });

  test('fallbackToCpu: loud warning through the logger, provider says cpu, runs correctly', { skip: expectCuda && 'CUDA is available on this machine' }, async () => {
    const m = affineModel(tmpDir());
    const warnings: { obj: object; msg: string }[] = [];
    const logger = { warn: (obj: object, msg: string) => warnings.push({ obj, msg }) };
    const s = await InferenceSession.open(m.path, { provider: 'cuda', fallbackToCpu: true, logger });
    assert.equal(s.provider, 'cpu');
    assert.match(s.fallbackReason ?? '', /CUDA is unavailable/);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /FALLING BACK TO CPU/);
    assert.equal((warnings[0]!.obj as { code: string }).code, 'MATCHD_CUDA_UNAVAILABLE');
    const x = randomFloat32(8, 1);
    const out = await s.run({ x: { type: 'float32', dims: [1, 8], data: x } });
    const ref = m.reference(x, 1);
    (out.y!.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-5));
    s.dispose();
  });

  test('explainCudaFailure names the library and the right fix', () => {
    const provider = explainCudaFailure(new MatchdError('MATCHD_CUDA_UNAVAILABLE',
      'cannot load /x/libonnxruntime_providers_cuda.so: /x/libonnxruntime_providers_cuda.so: cannot open shared object file: No such file or directory'));
    assert.equal(provider.details?.missingLibrary, 'libonnxruntime_providers_cuda.so');
    assert.match(provider.message, /npm run setup:cuda/);
    const cublas = explainCudaFailure(new MatchdError('MATCHD_CUDA_UNAVAILABLE',
      'cannot load /x/libonnxruntime_providers_cuda.so: libcublasLt.so.13: cannot open shared object file: No such file or directory'));
    assert.equal(cublas.details?.missingLibrary, 'libcublasLt.so.13');
    assert.match(cublas.message, /LD_LIBRARY_PATH/);
  });
});
