// The image pipeline: resize modes, input kinds (path / Buffer / Uint8Array / stream), limits, option checks,
// content sniffing, and the hand-off to the native packer.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { MatchdError, type ErrorCode } from '../../src/core/errors.ts';
import { loadImage } from '../../src/core/image/decode.ts';
import { sniffFormat } from '../../src/core/image/sniff.ts';
import { DEFAULT_LIMITS, imageSpecFrom, limitsFrom, type ImageSpec } from '../../src/core/image/spec.ts';
import { addon, type PackSpec } from '../../src/core/native.ts';
import { BLUE, GREEN, RED, bands, bmpHeader, near, pixelAt, pngBomb, solid, writeImage, type Rgb } from '../fixtures/images.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

const withCode = (code: ErrorCode, pattern?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof MatchdError, `expected a MatchdError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

const WHITE: Rgb = [255, 255, 255];

describe('image: pipeline', () => {
  let dir: string;
  let threeBands: Buffer; // 400×200: x 0–99 red, 100–299 green, 300–399 blue
  let threeBandsPath: string;
  before(async () => {
    dir = tmpDir('matchd-img-');
    threeBands = await bands(200, [[100, RED], [200, GREEN], [100, BLUE]]);
    threeBandsPath = writeImage(dir, 'bands.png', threeBands);
  });
  after(cleanupTmpDirs);

  describe('resize modes (400×200 red | green | blue → 100×100)', () => {
    test('shortest-edge-crop: scaled to 200×100 and centre-cropped, so only the middle band remains', async () => {
      const img = await loadImage(threeBandsPath, { width: 100, height: 100, resize: 'shortest-edge-crop' });
      assert.equal(img.width, 100);
      assert.equal(img.height, 100);
      assert.equal(img.channels, 3);
      assert.equal(img.data.length, 100 * 100 * 3);
      for (const [x, y] of [[3, 3], [50, 50], [96, 96], [3, 96], [96, 3]] as const) {
        assert.ok(near(pixelAt(img, x, y), GREEN, 2), `(${x},${y}) green, got ${pixelAt(img, x, y)}`);
      }
      // the crop edges sit exactly on the band boundaries: the kernel may bleed a little red/blue into columns 0 and 99
      for (let y = 0; y < 100; y++) {
        for (const x of [0, 99]) assert.ok(near(pixelAt(img, x, y), GREEN, 40), `(${x},${y}) mostly green, got ${pixelAt(img, x, y)}`);
      }
      assert.deepEqual(img.original, { format: 'png', width: 400, height: 200 });
    });

    test('squash: all three bands, each scaled horizontally', async () => {
      const img = await loadImage(threeBandsPath, { width: 100, height: 100, resize: 'squash' });
      assert.ok(near(pixelAt(img, 10, 50), RED, 2), `left red, got ${pixelAt(img, 10, 50)}`);
      assert.ok(near(pixelAt(img, 50, 50), GREEN, 2));
      assert.ok(near(pixelAt(img, 90, 50), BLUE, 2));
      assert.ok(near(pixelAt(img, 10, 0), RED, 2) && near(pixelAt(img, 90, 99), BLUE, 2), 'no bands top or bottom');
    });

    test('pad: contained at 100×50, centred, background bands top and bottom (white by default, or the given colour)', async () => {
      const img = await loadImage(threeBandsPath, { width: 100, height: 100, resize: 'pad' });
      for (const x of [10, 50, 90]) {
        assert.deepEqual(pixelAt(img, x, 5), WHITE, `top band at x=${x}`);
        assert.deepEqual(pixelAt(img, x, 94), WHITE, `bottom band at x=${x}`);
      }
      assert.ok(near(pixelAt(img, 10, 50), RED, 2));
      assert.ok(near(pixelAt(img, 50, 50), GREEN, 2));
      assert.ok(near(pixelAt(img, 90, 50), BLUE, 2));
      const black = await loadImage(threeBandsPath, { width: 100, height: 100, resize: 'pad', background: [0, 0, 0] });
      assert.deepEqual(pixelAt(black, 50, 5), [0, 0, 0]);
      assert.deepEqual(pixelAt(black, 50, 94), [0, 0, 0]);
    });

    test('non-square targets and upscaling: always exactly spec.width × spec.height', async () => {
      for (const resize of ['shortest-edge-crop', 'squash', 'pad'] as const) {
        for (const [w, h] of [[224, 224], [37, 91], [640, 8]] as const) {
          const img = await loadImage(threeBands, { width: w, height: h, resize });
          assert.equal(img.data.length, w * h * 3, `${resize} ${w}×${h}`);
          assert.equal(img.width, w);
          assert.equal(img.height, h);
        }
      }
    });

    test('every kernel works; nearest keeps band colours exact', async () => {
      for (const kernel of ['lanczos3', 'cubic', 'linear', 'nearest'] as const) {
        const img = await loadImage(threeBands, { width: 100, height: 100, resize: 'squash', kernel });
        assert.ok(near(pixelAt(img, 50, 50), GREEN, 2), kernel);
      }
      const nearest = await loadImage(threeBands, { width: 100, height: 100, resize: 'squash', kernel: 'nearest' });
      assert.deepEqual(pixelAt(nearest, 24, 50), RED);
      assert.deepEqual(pixelAt(nearest, 26, 50), GREEN);
    });
  });

  describe('input kinds', () => {
    const spec: ImageSpec = { width: 50, height: 40, resize: 'shortest-edge-crop' };

    test('path, Buffer, Uint8Array (with an offset) and streams give the same pixels', async () => {
      const fromPath = await loadImage(threeBandsPath, spec);
      assert.ok(Buffer.isBuffer(fromPath.data), 'data is sharp\'s output Buffer (no copy)');
      const fromBuffer = await loadImage(threeBands, spec);
      const padded = new Uint8Array(threeBands.length + 10);
      padded.set(threeBands, 7);
      const fromView = await loadImage(padded.subarray(7, 7 + threeBands.length), spec);
      const fromFsStream = await loadImage(createReadStream(threeBandsPath, { highWaterMark: 256 }), spec);
      const fromIterable = await loadImage(Readable.from(chunked(threeBands, 100)), spec);
      for (const other of [fromBuffer, fromView, fromFsStream, fromIterable]) {
        assert.ok(Buffer.compare(Buffer.from(other.data), Buffer.from(fromPath.data)) === 0);
        assert.deepEqual(other.original, fromPath.original);
      }
    });

    test('stream byte cap → MATCHD_IMAGE_TOO_LARGE and the stream is destroyed', async () => {
      const stream = createReadStream(threeBandsPath, { highWaterMark: 64 });
      await assert.rejects(loadImage(stream, spec, { maxBytes: 500 }), withCode('MATCHD_IMAGE_TOO_LARGE', /more than 500 bytes.*reading stopped/));
      assert.ok(stream.destroyed, 'reading stopped');
    });

    test('an endless stream is cut off at the byte cap', async () => {
      let produced = 0;
      const endless = new Readable({
        read() {
          produced += 1024;
          this.push(Buffer.alloc(1024, 0x41));
        },
      });
      await assert.rejects(loadImage(endless, spec, { maxBytes: 64 * 1024 }), withCode('MATCHD_IMAGE_TOO_LARGE'));
      assert.ok(produced < 256 * 1024, `stopped after ${produced} bytes`);
    });

    test('path and Buffer byte caps → MATCHD_IMAGE_TOO_LARGE (checked with fs.stat before reading)', async () => {
      await assert.rejects(loadImage(threeBandsPath, spec, { maxBytes: 100 }), withCode('MATCHD_IMAGE_TOO_LARGE', new RegExp(`bands\\.png.*${threeBands.length} bytes exceeds the limit of 100 bytes`)));
      await assert.rejects(loadImage(threeBands, spec, { maxBytes: 100 }), withCode('MATCHD_IMAGE_TOO_LARGE', /buffer of \d+ bytes/));
    });

    test('a failing stream → MATCHD_IMAGE_DECODE; an empty stream → MATCHD_IMAGE_DECODE "empty stream"', async () => {
      const failing = new PassThrough();
      failing.write(threeBands.subarray(0, 50));
      setImmediate(() => failing.destroy(new Error('connection reset')));
      await assert.rejects(loadImage(failing, spec), withCode('MATCHD_IMAGE_DECODE', /stream.*connection reset/));
      await assert.rejects(loadImage(Readable.from([]), spec), withCode('MATCHD_IMAGE_DECODE', /empty stream/));
    });

    test('a stream of text → MATCHD_IMAGE_UNSUPPORTED', async () => {
      await assert.rejects(loadImage(Readable.from(['not ', 'an ', 'image']), spec), withCode('MATCHD_IMAGE_UNSUPPORTED', /stream of 12 bytes.*not an image/));
    });

    test('an input of the wrong type → MATCHD_BAD_INPUT', async () => {
      await assert.rejects(loadImage(42 as never, spec), withCode('MATCHD_BAD_INPUT'));
      await assert.rejects(loadImage(null as never, spec), withCode('MATCHD_BAD_INPUT'));
      await assert.rejects(loadImage('', spec), withCode('MATCHD_BAD_INPUT'));
    });
  });

  describe('options', () => {
    test('bad spec → MATCHD_BAD_OPTION listing every problem', async () => {
      const bad = { width: 0, height: 1.5, resize: 'stretch', background: [300, 0, 0], kernel: 'bogus', colour: 'red' };
      await assert.rejects(loadImage(threeBands, bad as never), (e: unknown) => {
        withCode('MATCHD_BAD_OPTION', /spec\.width[\s\S]*spec\.height[\s\S]*spec\.resize[\s\S]*spec\.kernel[\s\S]*spec\.background/)(e);
        assert.equal(((e as MatchdError).details!.problems as string[]).length, 6, (e as MatchdError).message);
        return true;
      });
      await assert.rejects(loadImage(threeBands, { width: 10 } as never), withCode('MATCHD_BAD_OPTION', /Missing spec\.height[\s\S]*Missing spec\.resize/));
      await assert.rejects(loadImage(threeBands, null as never), withCode('MATCHD_BAD_OPTION'));
      assert.deepEqual(imageSpecFrom({ width: 3, height: 4, resize: 'pad' }), { width: 3, height: 4, resize: 'pad', kernel: 'cubic', background: [255, 255, 255], shortestEdge: null });
      await assert.rejects(
        loadImage(threeBands, { width: 100, height: 80, resize: 'shortest-edge-crop', shortestEdge: 90 }),
        withCode('MATCHD_BAD_OPTION', /spec\.shortestEdge >= 100/),
      );
    });

    test('bad limits → MATCHD_BAD_OPTION listing every problem; defaults fill the rest', async () => {
      await assert.rejects(
        loadImage(threeBands, { width: 4, height: 4, resize: 'squash' }, { maxPixels: -1, maxBytes: 'lots' as never }),
        withCode('MATCHD_BAD_OPTION', /limits\.maxPixels[\s\S]*limits\.maxBytes/),
      );
      assert.throws(() => limitsFrom({ maxPixel: 5 } as never), withCode('MATCHD_BAD_OPTION', /Unknown option limits\.maxPixel/));
      assert.throws(() => limitsFrom(7), withCode('MATCHD_BAD_OPTION', /Expected an object for limits/));
      assert.throws(() => limitsFrom({ maxBytes: 0 }), withCode('MATCHD_BAD_OPTION'));
      assert.deepEqual(limitsFrom(undefined), { ...DEFAULT_LIMITS });
      assert.deepEqual(limitsFrom({ maxBytes: 10 }), { maxPixels: DEFAULT_LIMITS.maxPixels, maxBytes: 10 });
    });
  });

  describe('content sniffing', () => {
    test('magic bytes name the container; non-images are null', async () => {
      const s = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
      assert.equal(sniffFormat(await solid(4, 4, RED, 'jpeg')), 'jpeg');
      assert.equal(sniffFormat(await solid(4, 4, RED, 'png')), 'png');
      assert.equal(sniffFormat(await solid(4, 4, RED, 'webp')), 'webp');
      assert.equal(sniffFormat(s('GIF89a', [1, 0, 1, 0])), 'gif');
      assert.equal(sniffFormat(s('GIF87a')), 'gif');
      assert.equal(sniffFormat(s([0x49, 0x49, 0x2a, 0])), 'tiff');
      assert.equal(sniffFormat(s([0x4d, 0x4d, 0, 0x2a])), 'tiff');
      assert.equal(sniffFormat(s([0, 0, 0, 0x1c], 'ftypavif', [0, 0, 0, 0], 'avifmif1miaf')), 'avif');
      assert.equal(sniffFormat(s([0, 0, 0, 0x18], 'ftypmif1', [0, 0, 0, 0], 'mif1avif')), 'avif');
      assert.equal(sniffFormat(s([0, 0, 0, 0x18], 'ftypheic', [0, 0, 0, 0], 'mif1heic')), 'heif');
      assert.equal(sniffFormat(s([0, 0, 0, 0x18], 'ftypisom', [0, 0, 2, 0], 'isomiso2')), null, 'an mp4 is not an image');
      assert.equal(sniffFormat(bmpHeader()), 'bmp');
      assert.equal(sniffFormat(s('BM is not a bitmap, just text here')), null);
      assert.equal(sniffFormat(s([0xef, 0xbb, 0xbf], '\n<svg/>')), 'svg');
      assert.equal(sniffFormat(s('<?xml version="1.0"?><svg/>')), 'svg');
      assert.equal(sniffFormat(s('<?xml version="1.0"?><note/>')), null);
      assert.equal(sniffFormat(s('8BPS')), 'psd');
      assert.equal(sniffFormat(s([0xff, 0x0a])), 'jxl');
      assert.equal(sniffFormat(s('P6\n4 4\n255\n')), 'pnm');
      assert.equal(sniffFormat(s('hello')), null);
      assert.equal(sniffFormat(new Uint8Array(0)), null);
      assert.equal(sniffFormat(s([0xff, 0xd8])), null, 'too short to tell');
      // the extension is irrelevant: a PNG written as .jpg decodes as png
      const img = await loadImage(writeImage(tmpDir(), 'really-a-png.jpg', await solid(8, 8, BLUE)), { width: 8, height: 8, resize: 'squash' });
      assert.equal(img.original.format, 'png');
    });
  });

  describe('hand-off to the native packer', () => {
    test('the RawImage packs into NCHW float32 equal to (pixel/255 - mean)/std', async () => {
      const W = 64;
      const H = 48;
      const spec: PackSpec = { width: W, height: H, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };
      const a = await loadImage(threeBandsPath, { width: W, height: H, resize: 'squash' });
      const b = await loadImage(await solid(10, 10, [12, 200, 77]), { width: W, height: H, resize: 'pad' });
      const out = new Float32Array(2 * 3 * W * H);
      await addon().packImages([a, b], out, spec);
      const plane = W * H;
      const samples: [number, number][] = [[0, 0], [5, 20], [32, 24], [63, 47], [50, 3]];
      for (const [slot, img] of [a, b].entries()) {
        for (const [x, y] of samples) {
          for (let c = 0; c < 3; c++) {
            const pixel = img.data[(y * W + x) * 3 + c]!;
            const want = (pixel / 255 - spec.mean[c]!) / spec.std[c]!;
            const got = out[(slot * 3 + c) * plane + y * W + x]!;
            assert.ok(Math.abs(got - want) < 1e-5, `slot ${slot} (${x},${y}) c${c}: ${got} vs ${want}`);
          }
        }
      }
      // and the values are the expected colours: slot 0 (5,20) is red → channel 0 at its max
      assert.ok(Math.abs(out[0 * plane + 20 * W + 5]! - (1 - spec.mean[0]) / spec.std[0]) < 1e-5);
    });
  });

  test('the pixel limit is refused before decoding even when the bytes are tiny (and the byte limit does not trip)', async () => {
    await assert.rejects(loadImage(pngBomb(20_000, 20_000), { width: 8, height: 8, resize: 'squash' }), withCode('MATCHD_IMAGE_TOO_LARGE', /20000×20000/));
  });
});

function* chunked(buf: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
