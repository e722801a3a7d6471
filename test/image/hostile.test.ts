// Hostile and awkward inputs: each gives its error code, or the right pixels. One bad image never fails its batch.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { MatchdError, type ErrorCode } from '../../src/core/errors.ts';
import { loadImage } from '../../src/core/image/decode.ts';
import type { ImageSpec } from '../../src/core/image/spec.ts';
import {
  BLUE, GREEN, RED, animated, bmpHeader, cmykJpeg, exifOrientedJpeg, greyPng, halfTransparentPng, near, pixelAt, png16,
  pngBomb, solid, truncatedJpeg, writeImage,
} from '../fixtures/images.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';

/** Rejects with a MatchdError of `code` whose message matches `pattern`. */
const withCode = (code: ErrorCode, pattern?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof MatchdError, `expected a MatchdError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

const SQ: ImageSpec = { width: 16, height: 16, resize: 'squash' };

describe('image: hostile inputs', () => {
  let dir: string;
  before(() => {
    dir = tmpDir('matchd-img-');
  });
  after(cleanupTmpDirs);

  test('zero-byte file → MATCHD_IMAGE_DECODE "empty file", naming the path', async () => {
    const path = writeImage(dir, 'empty.jpg', new Uint8Array(0));
    await assert.rejects(loadImage(path, SQ), withCode('MATCHD_IMAGE_DECODE', /empty file/));
    await assert.rejects(loadImage(path, SQ), (e: MatchdError) => e.message.includes(path));
    await assert.rejects(loadImage(Buffer.alloc(0), SQ), withCode('MATCHD_IMAGE_DECODE', /buffer of 0 bytes.*empty buffer/));
  });

  test('truncated JPEG (a valid JPEG cut in half) → MATCHD_IMAGE_DECODE, not a partly grey image', async () => {
    const { whole, truncated } = await truncatedJpeg();
    const ok = await loadImage(whole, SQ);
    assert.equal(ok.data.length, 16 * 16 * 3);
    const path = writeImage(dir, 'truncated.jpg', truncated);
    await assert.rejects(loadImage(path, SQ), withCode('MATCHD_IMAGE_DECODE', /truncated\.jpg.*cannot decode jpeg: .*premature end/i));
    await assert.rejects(loadImage(truncated, SQ), withCode('MATCHD_IMAGE_DECODE', new RegExp(`buffer of ${truncated.length} bytes`)));
  });

  test('truncated PNG, WebP and GIF → MATCHD_IMAGE_DECODE', async () => {
    const noisy = sharp({ create: { width: 128, height: 128, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
    for (const bytes of [await noisy.clone().png().toBuffer(), await noisy.clone().webp().toBuffer(), await noisy.clone().gif().toBuffer()]) {
      await assert.rejects(loadImage(bytes.subarray(0, bytes.length >> 1), SQ), withCode('MATCHD_IMAGE_DECODE'));
    }
  });

  test('PNG bomb: a tiny PNG whose IHDR claims 50000×50000 → MATCHD_IMAGE_TOO_LARGE, fast, before decoding', async () => {
    const bomb = pngBomb(50_000, 50_000);
    assert.ok(bomb.length < 200, `the bomb is ${bomb.length} bytes`);
    const path = writeImage(dir, 'bomb.png', bomb);
    const t0 = performance.now();
    await assert.rejects(loadImage(path, SQ), withCode('MATCHD_IMAGE_TOO_LARGE', /50000×50000.*exceeds the limit of 50000000 pixels.*before decoding/));
    await assert.rejects(loadImage(bomb, SQ), withCode('MATCHD_IMAGE_TOO_LARGE'));
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `refused in ${ms.toFixed(0)} ms`);
    // the check is exact: one pixel over a (very high) explicit limit is still refused
    await assert.rejects(loadImage(bomb, SQ, { maxPixels: 2_499_999_999 }), withCode('MATCHD_IMAGE_TOO_LARGE'));
  });

  test('the pixel limit is configurable: a 100×100 image over maxPixels 5000 → MATCHD_IMAGE_TOO_LARGE', async () => {
    const img = await solid(100, 100, RED);
    await assert.rejects(loadImage(img, SQ, { maxPixels: 5000 }), withCode('MATCHD_IMAGE_TOO_LARGE', /100×100 = 10000 pixels/));
    const ok = await loadImage(img, SQ, { maxPixels: 10_000 });
    assert.deepEqual(pixelAt(ok, 8, 8), RED);
  });

  test('a text file named .jpg → MATCHD_IMAGE_UNSUPPORTED "not an image", saying what was found', async () => {
    const path = writeImage(dir, 'notes.jpg', Buffer.from('hello world, this is not a picture\n'));
    await assert.rejects(loadImage(path, SQ), withCode('MATCHD_IMAGE_UNSUPPORTED', /notes\.jpg.*not an image: found text "hello world, this is not a picture\\n"/));
  });

  test('other non-images name what they are: PDF, HTML, binary', async () => {
    await assert.rejects(loadImage(Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj'), SQ), withCode('MATCHD_IMAGE_UNSUPPORTED', /not an image: found a PDF document/));
    await assert.rejects(loadImage(Buffer.from('<!DOCTYPE html><html>'), SQ), withCode('MATCHD_IMAGE_UNSUPPORTED', /an HTML document/));
    await assert.rejects(loadImage(Buffer.from([0, 1, 2, 3, 0xfe, 0xff]), SQ), withCode('MATCHD_IMAGE_UNSUPPORTED', /binary data starting 00 01 02 03 fe ff/));
  });

  test('an image format this build cannot decode (BMP) and SVG → MATCHD_IMAGE_UNSUPPORTED', async () => {
    await assert.rejects(loadImage(bmpHeader(), SQ), withCode('MATCHD_IMAGE_UNSUPPORTED', /bmp images are not supported/));
    const svg = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    await assert.rejects(loadImage(svg, SQ), withCode('MATCHD_IMAGE_UNSUPPORTED', /svg \(vector\)/));
  });

  test('a PNG signature followed by garbage → MATCHD_IMAGE_DECODE (an image, but corrupt)', async () => {
    const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('garbage garbage garbage garbage')]);
    await assert.rejects(loadImage(bytes, SQ), withCode('MATCHD_IMAGE_DECODE', /cannot decode png/));
  });

  test('a missing file and a directory → MATCHD_IMAGE_DECODE naming the path', async () => {
    await assert.rejects(loadImage(join(dir, 'nope.png'), SQ), withCode('MATCHD_IMAGE_DECODE', /nope\.png.*file not found/));
    const sub = join(dir, 'folder.png');
    mkdirSync(sub);
    await assert.rejects(loadImage(sub, SQ), withCode('MATCHD_IMAGE_DECODE', /folder\.png.*not a regular file/));
  });

  test('CMYK JPEG → sRGB: a red image stays red', async () => {
    const bytes = await cmykJpeg(RED);
    assert.equal((await sharp(bytes).metadata()).space, 'cmyk', 'the fixture really is CMYK');
    const img = await loadImage(bytes, SQ);
    assert.equal(img.channels, 3);
    const px = pixelAt(img, 8, 8);
    assert.ok(px[0] >= 200 && px[1] <= 40 && px[2] <= 40, `red, got ${px}`);
    assert.equal(img.original.format, 'jpeg');
  });

  test('16-bit PNG → 8-bit with the same colour', async () => {
    const bytes = await png16([10, 128, 250]);
    assert.equal((await sharp(bytes).metadata()).depth, 'ushort', 'the fixture really is 16-bit');
    const img = await loadImage(bytes, SQ);
    assert.equal(img.data.length, 16 * 16 * 3);
    assert.ok(near(pixelAt(img, 3, 3), [10, 128, 250], 1), `got ${pixelAt(img, 3, 3)}`);
  });

  test('animated GIF → the first frame only', async () => {
    const bytes = await animated([RED, GREEN], 'gif');
    assert.equal((await sharp(bytes).metadata()).pages, 2, 'the fixture really has 2 frames');
    const img = await loadImage(bytes, SQ);
    assert.equal(img.data.length, 16 * 16 * 3, 'one frame, not a strip of frames');
    assert.ok(near(pixelAt(img, 8, 8), RED, 8), `first frame is red, got ${pixelAt(img, 8, 8)}`);
    assert.ok(near(pixelAt(img, 8, 15), RED, 8));
    assert.deepEqual(img.original, { format: 'gif', width: 16, height: 16 });
  });

  test('animated WebP → the first frame only', async () => {
    const bytes = await animated([RED, BLUE], 'webp');
    assert.equal((await sharp(bytes).metadata()).pages, 2);
    const img = await loadImage(bytes, SQ);
    assert.ok(near(pixelAt(img, 8, 8), RED, 4), `got ${pixelAt(img, 8, 8)}`);
    assert.equal(img.original.format, 'webp');
  });

  test('EXIF orientation 6 is applied: stored 64×32 left red | right blue displays 32×64, red on top', async () => {
    const bytes = await exifOrientedJpeg(6, RED, BLUE, 64, 32);
    assert.equal((await sharp(bytes).metadata()).orientation, 6, 'the fixture carries orientation 6');
    const img = await loadImage(bytes, { width: 32, height: 64, resize: 'squash' });
    assert.deepEqual(img.original, { format: 'jpeg', width: 32, height: 64 });
    for (const x of [4, 16, 28]) {
      assert.ok(near(pixelAt(img, x, 8), RED, 40), `top is red at x=${x}, got ${pixelAt(img, x, 8)}`);
      assert.ok(near(pixelAt(img, x, 56), BLUE, 40), `bottom is blue at x=${x}, got ${pixelAt(img, x, 56)}`);
    }
  });

  test('EXIF orientation 8 (rotate 270° clockwise): the stored right half comes out on top', async () => {
    const bytes = await exifOrientedJpeg(8, RED, BLUE, 64, 32);
    const img = await loadImage(bytes, { width: 32, height: 64, resize: 'squash' });
    assert.ok(near(pixelAt(img, 16, 8), BLUE, 40), `top is blue, got ${pixelAt(img, 16, 8)}`);
    assert.ok(near(pixelAt(img, 16, 56), RED, 40), `bottom is red, got ${pixelAt(img, 16, 56)}`);
  });

  test('RGBA PNG with transparent pixels → flattened onto the background (white by default)', async () => {
    const bytes = await halfTransparentPng(RED, 16, 16);
    assert.equal((await sharp(bytes).metadata()).hasAlpha, true);
    const white = await loadImage(bytes, SQ);
    assert.equal(white.channels, 3);
    assert.equal(white.data.length, 16 * 16 * 3);
    assert.deepEqual(pixelAt(white, 2, 8), [255, 255, 255], 'transparent → white');
    assert.deepEqual(pixelAt(white, 13, 8), RED, 'opaque stays');
    const green = await loadImage(bytes, { ...SQ, background: [0, 128, 0] });
    assert.deepEqual(pixelAt(green, 2, 8), [0, 128, 0], 'transparent → the given background');
    assert.deepEqual(pixelAt(green, 13, 8), RED);
  });

  test('greyscale PNG → 3 equal channels', async () => {
    const bytes = await greyPng(100);
    assert.equal((await sharp(bytes).metadata()).channels, 1, 'the fixture really is single-channel');
    const img = await loadImage(bytes, SQ);
    assert.equal(img.channels, 3);
    assert.equal(img.data.length, 16 * 16 * 3);
    assert.deepEqual(pixelAt(img, 5, 5), [100, 100, 100]);
  });

  test('batch: one bad image never fails the rest (Promise.allSettled over good and bad inputs)', async () => {
    const inputs = [
      { input: await solid(32, 32, RED), want: RED },
      { input: writeImage(dir, 'batch-empty.png', new Uint8Array(0)), code: 'MATCHD_IMAGE_DECODE' },
      { input: writeImage(dir, 'batch-green.png', await solid(20, 40, GREEN)), want: GREEN },
      { input: pngBomb(), code: 'MATCHD_IMAGE_TOO_LARGE' },
      { input: (await truncatedJpeg()).truncated, code: 'MATCHD_IMAGE_DECODE' },
      { input: writeImage(dir, 'batch-text.jpg', Buffer.from('just words')), code: 'MATCHD_IMAGE_UNSUPPORTED' },
      { input: await solid(50, 10, BLUE, 'webp'), want: BLUE },
    ] as const;
    const settled = await Promise.allSettled(inputs.map((i) => loadImage(i.input, SQ)));
    settled.forEach((s, k) => {
      const item = inputs[k]!;
      if ('want' in item) {
        assert.equal(s.status, 'fulfilled', `item ${k} decodes`);
        const img = (s as PromiseFulfilledResult<Awaited<ReturnType<typeof loadImage>>>).value;
        assert.ok(near(pixelAt(img, 8, 8), item.want, 2), `item ${k} colour ${pixelAt(img, 8, 8)}`);
      } else {
        assert.equal(s.status, 'rejected', `item ${k} fails`);
        const err = (s as PromiseRejectedResult).reason;
        assert.ok(err instanceof MatchdError);
        assert.equal(err.code, item.code, `item ${k}: ${err.message}`);
      }
    });
  });
});
