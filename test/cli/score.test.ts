// The score command as a user runs it: a real process, real sample files, real output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot, sampleImages, samplesDir } from '../fixtures/packages.ts';

function matchd(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli: matchd score', () => {
  after(cleanupTmpDirs);

  test('the README example: red ranks first with band adopt', () => {
    const r = matchd('score', 'samples/red.jpg', 'a blue object', 'a red object');
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split('\n');
    assert.match(rows[0]!, /model: demo-colours \(cpu\)/);
    assert.match(rows[1]!, /text\s+cosine\s+score\s+band/);
    assert.match(rows[2]!, /^a red object\s+0\.\d{3}\s+0\.\d{3}\s+adopt$/);
    assert.match(rows[3]!, /^a blue object\s+0\.000\s+0\.000\s+reject$/);
  });

  test('--json gives every text with cosine, score and band, in input order', () => {
    const r = matchd('score', 'samples/blue.png', 'red', 'blue', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.results.map((x: { text: string }) => x.text), ['red', 'blue']);
    assert.equal(out.results[1].band, 'adopt');
    for (const x of out.results) assert.deepEqual(Object.keys(x).sort(), ['band', 'cosine', 'score', 'text', 'truncated']);
  });

  test('--dir with --texts: JSON Lines per file, bad files reported and counted, the run completes', () => {
    const dir = tmpDir();
    for (const f of fs.readdirSync(samplesDir)) fs.copyFileSync(path.join(samplesDir, f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, 'notes.jpg'), 'not an image');
    fs.writeFileSync(path.join(dir, 'zero.png'), '');
    const texts = path.join(dir, 'texts.txt');
    fs.writeFileSync(texts, '# texts\na red object\n\na green object\n');
    const r = matchd('score', '--dir', dir, '--texts', texts, '--batch', '2');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, sampleImages().length + 2);
    const byName = Object.fromEntries(lines.map((l) => [path.basename(l.file), l]));
    assert.equal(byName['notes.jpg'].error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal(byName['zero.png'].error.code, 'MATCHD_IMAGE_DECODE');
    assert.equal(byName['red.jpg'].results[0].band, 'adopt');
    assert.equal(byName['red.jpg'].textsFrom, 'companion', 'samples/red.txt');
    assert.deepEqual(byName['green.webp'].texts, ['a red object', 'a green object']);
    assert.equal(byName['green.webp'].textsFrom, 'fallback');
    assert.equal(byName['green.webp'].results[1].band, 'adopt');
    assert.match(r.stderr, /2 failed \(MATCHD_IMAGE_DECODE: 1, MATCHD_IMAGE_UNSUPPORTED: 1\)/);
  });

  test('--dir: each image against its own texts — photo.json, photo.txt, the manifest, then --texts — with its meta on its line', () => {
    const dir = tmpDir();
    const copy = (from: string, to: string) => fs.copyFileSync(path.join(samplesDir, from), path.join(dir, to));
    copy('red.jpg', 'a.jpg');
    fs.writeFileSync(path.join(dir, 'a.txt'), 'a blue object\na red object\n');
    fs.writeFileSync(path.join(dir, 'a.json'), '{"meta":{"sku":"A"}}');
    copy('red.jpg', 'b.jpg');
    fs.writeFileSync(path.join(dir, 'b.json'), '{"texts":["a red object"],"meta":{"sku":"B"}}');
    fs.writeFileSync(path.join(dir, 'b.txt'), 'ignored: photo.json has texts\n');
    copy('green.webp', 'c.webp');
    copy('blue.png', 'd.png');
    copy('blue.png', 'e.png');
    fs.writeFileSync(path.join(dir, 'e.txt'), Buffer.from([0x62, 0x6c, 0x75, 0x65, 0xff, 0x0a]));
    const manifest = path.join(dir, 'titles.csv');
    fs.writeFileSync(manifest, 'file,text,sku\nc.webp,a green object,C\nc.webp,a red object,\nghost.jpg,x,\n');
    const fallback = path.join(dir, 'fallback.txt');
    fs.writeFileSync(fallback, 'a blue object\n');
    const r = matchd('score', '--dir', dir, '--manifest', manifest, '--texts', fallback);
    assert.equal(r.code, 0, r.stderr);
    const byName = Object.fromEntries(r.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((l) => [path.basename(l.file), l]));
    assert.deepEqual(Object.keys(byName).sort(), ['a.jpg', 'b.jpg', 'c.webp', 'd.png', 'e.png'], 'companions, manifests and texts files are no images');
    assert.deepEqual(byName['a.jpg'].texts, ['a blue object', 'a red object']);
    assert.deepEqual(byName['a.jpg'].results.map((x: { band: string }) => x.band), ['reject', 'adopt']);
    assert.deepEqual(byName['a.jpg'].meta, { sku: 'A' });
    assert.equal(byName['a.jpg'].textsFrom, 'companion');
    assert.deepEqual(byName['b.jpg'].texts, ['a red object']);
    assert.deepEqual(byName['c.webp'].texts, ['a green object', 'a red object']);
    assert.equal(byName['c.webp'].textsFrom, 'manifest');
    assert.deepEqual(byName['c.webp'].meta, { sku: 'C' });
    assert.equal(byName['c.webp'].results[0].band, 'adopt');
    assert.deepEqual(byName['d.png'].texts, ['a blue object']);
    assert.equal(byName['d.png'].textsFrom, 'fallback');
    assert.equal(byName['e.png'].ok, false);
    assert.equal(byName['e.png'].error.code, 'MATCHD_COMPANION_INVALID');
    assert.match(r.stderr, /MATCHD_COMPANION_INVALID: titles\.csv line 4: ghost\.jpg is not in/);
    assert.match(r.stderr, /scored 4 of 5 image\(s\); 1 failed \(MATCHD_COMPANION_INVALID: 1\)/);
  });

  test('--dir without --texts: images without texts of their own are per-item MATCHD_TEXTS_REQUIRED; a JSON Lines manifest in DIR is found by its name', () => {
    const dir = tmpDir();
    fs.copyFileSync(path.join(samplesDir, 'red.jpg'), path.join(dir, 'red.jpg'));
    fs.copyFileSync(path.join(samplesDir, 'blue.png'), path.join(dir, 'blue.png'));
    fs.copyFileSync(path.join(samplesDir, 'yellow.jpg'), path.join(dir, 'yellow.jpg'));
    fs.writeFileSync(path.join(dir, 'matchd-manifest.jsonl'), '{"file":"blue.png","texts":["a blue object"],"meta":{"n":1}}\n{"file":"yellow.jpg","text":"' + 'y'.repeat(3000) + '"}\n');
    const r = matchd('score', '--dir', dir);
    assert.equal(r.code, 0, r.stderr);
    const byName = Object.fromEntries(r.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((l) => [path.basename(l.file), l]));
    assert.equal(byName['blue.png'].results[0].band, 'adopt');
    assert.deepEqual(byName['blue.png'].meta, { n: 1 });
    assert.equal(byName['red.jpg'].error.code, 'MATCHD_TEXTS_REQUIRED');
    assert.match(byName['red.jpg'].error.message, /red\.jpg has no texts: give --texts FILE, a companion red\.txt, or a manifest entry/);
    assert.equal(byName['yellow.jpg'].error.code, 'MATCHD_TEXT_INVALID');
    assert.match(byName['yellow.jpg'].error.message, /3000 characters; at most 2000/);
  });

  test('invalid UTF-8 in the texts file → MATCHD_TEXT_INVALID naming the line', () => {
    const dir = tmpDir();
    const texts = path.join(dir, 'texts.txt');
    fs.writeFileSync(texts, Buffer.concat([Buffer.from('red\nblue\n'), Buffer.from([0xff, 0xfe]), Buffer.from(' x\n')]));
    const r = matchd('score', '--dir', samplesDir, '--texts', texts);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MATCHD_TEXT_INVALID: .*invalid UTF-8 \(around line 3\)/);
  });

  test('usage errors exit 2; an unreadable image exits 1 with its code', () => {
    assert.equal(matchd('score', 'samples/red.jpg').code, 2);
    assert.equal(matchd('score', '--nope').code, 2);
    assert.equal(matchd('score', 'x.jpg', 'red', '--threads', '-1').code, 2);
    const r = matchd('score', 'no-such.jpg', 'red');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MATCHD_IMAGE_DECODE/);
  });

  test('a bad model folder → MATCHD_MODEL_INVALID', () => {
    const r = matchd('score', 'samples/red.jpg', 'red', '--model', tmpDir());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MATCHD_MODEL_INVALID: .*model\.yaml: not found/s);
  });
});
