// The native packer: one pass from 8-bit interleaved pixels to normalised NCHW float32/float16, fed to run in place.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { openSession } from '../fixtures/engine.ts';
import { MatchdError } from '../../src/core/errors.ts';
import { addon, type PackSpec, type RawImage } from '../../src/core/native.ts';
import { float16ToFloat32, float32ToFloat16, rng } from '../fixtures/onnx-builder.ts';
import { cleanupTmpDirs, identityModel, tmpDir } from '../fixtures/models.ts';

const W = 7;
const H = 5;
const spec: PackSpec = { width: W, height: H, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };

function randomImage(channels: 1 | 3 | 4, seed: number): RawImage {
  const r = rng(seed);
  return { data: Uint8Array.from({ length: W * H * channels }, () => Math.floor(r() * 256)), width: W, height: H, channels };
}

/** The JS reference: float32 arithmetic exactly as specified, NCHW. */
function reference(images: RawImage[], s: PackSpec, bgr = false): Float32Array {
  const plane = s.width * s.height;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((img, b) => {
    for (let c = 0; c < 3; c++) {
      const src = img.channels === 1 ? 0 : bgr ? 2 - c : c;
      for (let i = 0; i < plane; i++) {
        const v = img.data[i * img.channels + src]!;
        out[(b * 3 + c) * plane + i] = Math.fround(Math.fround(Math.fround(v * Math.fround(1 / 255)) - Math.fround(s.mean[c]!)) / Math.fround(s.std[c]!));
      }
    }
  });
  return out;
}

const bad = (pattern: RegExp) => (e: unknown) => e instanceof MatchdError && e.code === 'MATCHD_BAD_INPUT' && pattern.test(e.message);

describe('engine: native image packer', () => {
  after(cleanupTmpDirs);
  const images = [randomImage(3, 1), randomImage(4, 2), randomImage(1, 3)];

  test('float32: RGB, RGBA (alpha ignored) and grey match the JS reference', async () => {
    const out = new Float32Array(3 * 3 * W * H);
    await addon().packImages(images, out, spec);
    const ref = reference(images, spec);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(out[i]! - ref[i]!) <= 1e-6, `element ${i}: ${out[i]} vs ${ref[i]}`);
  });

  test('float16: equal to the reference rounded to half precision', async () => {
    const out = new Uint16Array(3 * 3 * W * H);
    await addon().packImages(images, out, spec);
    const ref = reference(images, spec);
    let exact = 0;
    for (let i = 0; i < ref.length; i++) {
      const got = float16ToFloat32(out[i]!);
      // within one half-precision rounding step of the float32 reference
      const ulp = Math.abs(float16ToFloat32(float32ToFloat16(ref[i]!) + 1) - float16ToFloat32(float32ToFloat16(ref[i]!)));
      assert.ok(Math.abs(got - ref[i]!) <= ulp / 2 + 1e-7, `element ${i}: ${got} vs ${ref[i]}`);
      if (out[i] === float32ToFloat16(ref[i]!)) exact++;
    }
    assert.ok(exact / ref.length > 0.99, `most values round identically (${exact}/${ref.length})`);
  });

  test('bgr channel order and a batch offset', async () => {
    const out = new Float32Array(4 * 3 * W * H).fill(-99);
    await addon().packImages([images[0]!], out, { ...spec, channelOrder: 'bgr', offset: 2 });
    const ref = reference([images[0]!], spec, true);
    const plane3 = 3 * W * H;
    assert.ok(out.subarray(0, 2 * plane3).every((v) => v === -99), 'slots before the offset untouched');
    assert.ok(out.subarray(3 * plane3).every((v) => v === -99), 'slots after untouched');
    const slot = out.subarray(2 * plane3, 3 * plane3);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(slot[i]! - ref[i]!) <= 1e-6);
  });

  test('the packed buffer is fed to run as is', async () => {
    const s = await openSession(identityModel(tmpDir(), ['batch', 3, H, W]).path);
    const batch = new Float32Array(3 * 3 * W * H);
    await addon().packImages(images, batch, spec);
    const out = await s.run({ x: { type: 'float32', dims: [3, 3, H, W], data: batch } });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), Array.from(batch));
    s.dispose();
  });

  test('float16 helpers agree with the JS implementation on every half value', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = addon().float16ToFloat32(all);
    for (let i = 0; i < 65536; i++) {
      const js = float16ToFloat32(i);
      assert.ok(Object.is(f[i], js) || (Number.isNaN(f[i]) && Number.isNaN(js)), `half ${i}`);
    }
    const back = addon().float32ToFloat16(f);
    for (let i = 0; i < 65536; i++) if (!Number.isNaN(f[i]!)) assert.equal(back[i], i);
  });

  test('bad calls → MATCHD_BAD_INPUT', async () => {
    const packer = addon();
    await assert.rejects(async () => packer.packImages([{ ...images[0]!, width: W + 1 }], new Float32Array(1000), spec), bad(/resize before packing/));
    await assert.rejects(async () => packer.packImages(images, new Float32Array(10), spec), bad(/are needed/));
    await assert.rejects(async () => packer.packImages([{ ...images[0]!, data: new Uint8Array(3) }], new Float32Array(1000), spec), bad(/expected 105 bytes/));
    await assert.rejects(async () => packer.packImages([{ ...images[0]!, channels: 2 as 3 }], new Float32Array(1000), spec), bad(/channels/));
    await assert.rejects(async () => packer.packImages(images, new Float64Array(1000) as never, spec), bad(/Float32Array/));
    await assert.rejects(async () => packer.packImages(images, new Float32Array(1000), { ...spec, std: [1, 0, 1] }), bad(/std/));
    await assert.rejects(async () => packer.packImages(images, new Float32Array(1000), { ...spec, mean: [1, 2] as never }), bad(/mean/));
  });
});
