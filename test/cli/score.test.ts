// The score command as a user runs it: a real process, real sample files, real output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot, samplesDir } from '../fixtures/packages.ts';

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
    assert.equal(lines.length, fs.readdirSync(samplesDir).length + 2);
    const byName = Object.fromEntries(lines.map((l) => [path.basename(l.file), l]));
    assert.equal(byName['notes.jpg'].error.code, 'MATCHD_IMAGE_UNSUPPORTED');
    assert.equal(byName['zero.png'].error.code, 'MATCHD_IMAGE_DECODE');
    assert.equal(byName['red.jpg'].results[0].band, 'adopt');
    assert.equal(byName['green.webp'].results[1].band, 'adopt');
    assert.match(r.stderr, /2 failed \(MATCHD_IMAGE_DECODE: 1, MATCHD_IMAGE_UNSUPPORTED: 1\)/);
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
