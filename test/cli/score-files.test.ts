// `matchd score` and what it reads: `--dir` reports every file it skips — other extensions, hidden files, symlinks,
// FIFOs — as a count (and by name with --verbose), never silently; a FIFO given as IMAGE is refused before it is
// opened (it used to hang forever), and the library refuses one too instead of blocking a thread.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isMatchdError } from '../../src/core/errors.ts';
import { Matcher } from '../../src/core/matcher.ts';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { demoDir, repoRoot, samplesDir } from '../fixtures/packages.ts';

function matchd(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 30_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function mkfifo(file: string): void {
  const r = spawnSync('mkfifo', [file]);
  assert.equal(r.status, 0, `mkfifo: ${r.stderr}`);
}

describe('cli: score — files', () => {
  after(cleanupTmpDirs);

  test('--dir counts what it skips and why; --verbose names each file', () => {
    const dir = tmpDir();
    fs.copyFileSync(path.join(samplesDir, 'red.jpg'), path.join(dir, 'red.jpg'));
    fs.copyFileSync(path.join(samplesDir, 'blue.png'), path.join(dir, 'blue.png'));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello');
    fs.copyFileSync(path.join(samplesDir, 'red.jpg'), path.join(dir, '.hidden.jpg'));
    fs.symlinkSync(path.join(dir, 'red.jpg'), path.join(dir, 'link.jpg'));
    mkfifo(path.join(dir, 'pipe.jpg'));
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.copyFileSync(path.join(samplesDir, 'red.jpg'), path.join(dir, 'sub', 'nested.jpg'));
    const textsFile = path.join(tmpDir(), 'texts.txt');
    fs.writeFileSync(textsFile, 'red\n');

    const r = matchd('score', '--dir', dir, '--texts', textsFile);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => path.basename(JSON.parse(l).file)), ['blue.png', 'red.jpg']);
    assert.match(r.stderr, /matchd: skipped 4 file\(s\): (?=.*1 not an image extension)(?=.*1 hidden)(?=.*1 symlink \(not followed\))(?=.*1 not a regular file).*\(--verbose lists them\)/);
    assert.doesNotMatch(r.stderr, /notes\.txt/);

    const v = matchd('score', '--dir', dir, '--texts', textsFile, '--verbose');
    assert.equal(v.code, 0, v.stderr);
    for (const [name, why] of [['notes.txt', 'not an image extension'], ['.hidden.jpg', 'hidden'], ['link.jpg', 'symlink \\(not followed\\)'], ['pipe.jpg \\(named pipe \\(FIFO\\)\\)', 'not a regular file']]) {
      assert.match(v.stderr, new RegExp(`matchd: skipped .*${name}: ${why}`), name);
    }

    const rec = matchd('score', '--dir', dir, '--texts', textsFile, '--recursive');
    assert.equal(rec.stdout.trim().split('\n').length, 3, 'sub/nested.jpg with --recursive');
  });

  test('a FIFO as IMAGE is refused before it is opened (exit 1, coded), never a hang', () => {
    const fifo = path.join(tmpDir(), 'photo.jpg');
    mkfifo(fifo);
    const r = matchd('score', fifo, 'red');
    assert.equal(r.signal, null, 'the command finished on its own (it was not killed by the timeout)');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^matchd: MATCHD_IMAGE_DECODE: image ".*photo\.jpg" is a named pipe \(FIFO\), not a regular file/m);
    const d = matchd('score', path.dirname(fifo), 'red');
    assert.match(d.stderr, /is a directory, not a regular file/);
  });

  test('the library refuses a FIFO with MATCHD_IMAGE_DECODE instead of blocking a thread', { timeout: 30_000 }, async () => {
    const fifo = path.join(tmpDir(), 'pipe.png');
    mkfifo(fifo);
    const m = await Matcher.open(demoDir);
    try {
      await assert.rejects(m.score(fifo, ['red']), (e) => isMatchdError(e, 'MATCHD_IMAGE_DECODE') && /not a regular file \(a named pipe\)/.test(e.message));
    } finally {
      m.close();
    }
  });
});
