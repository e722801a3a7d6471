// The CLI as a new user meets it: every failure is one line `matchd: CODE: message` (stacks only with --debug),
// per-command help with examples, --version, and the mistakes of the first hour (a second image given as a text, an
// empty --dir, a texts file or folder that is not there).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

function matchd(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'matchd.mjs'), ...args], {
    encoding: 'utf8', cwd: opts.cwd ?? repoRoot, timeout: 60_000, env: { ...process.env, MATCHD_DEBUG: '', ...opts.env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One coded line first, no stack trace anywhere. */
function assertCodedLine(r: ReturnType<typeof matchd>, code: string, exit: number, message?: RegExp): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  const first = r.stderr.split('\n')[0]!;
  assert.match(first, new RegExp(`^matchd: ${code}: `), r.stderr);
  if (message) assert.match(first, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without --debug');
}

describe('cli: the first hour', () => {
  after(cleanupTmpDirs);

  describe('bad calls: one line with a code, what to do, no stack', () => {
    test('a --texts file that is not there: MATCHD_PATH_INVALID naming --texts (was an ENOENT stack)', () => {
      assertCodedLine(matchd(['score', '--dir', 'samples', '--texts', 'no-such-texts.txt']), 'MATCHD_PATH_INVALID', 1, /--texts no-such-texts\.txt: no such file/);
      assertCodedLine(matchd(['score', 'samples/red.jpg', '--texts', 'no-such-texts.txt']), 'MATCHD_PATH_INVALID', 1, /--texts/);
    });

    test('a --dir folder that is not there, or a file: MATCHD_PATH_INVALID naming --dir (was a readdir stack)', () => {
      assertCodedLine(matchd(['score', '--dir', 'no-such-folder', '--texts', 'samples/red.txt']), 'MATCHD_PATH_INVALID', 1, /--dir no-such-folder: no such folder/);
      assertCodedLine(matchd(['score', '--dir', 'samples/red.jpg']), 'MATCHD_PATH_INVALID', 1, /not a folder; to score one image: matchd score IMAGE TEXT/);
    });

    test('a --manifest that is not there is refused before the model loads', () => {
      assertCodedLine(matchd(['score', '--dir', 'samples', '--manifest', 'nope.csv']), 'MATCHD_PATH_INVALID', 1, /--manifest nope\.csv/);
    });

    test('usage mistakes: MATCHD_USAGE, exit 2, and where the usage is', () => {
      for (const args of [['score', '--bogus'], ['score'], ['run', '--extra'], ['frobnicate'], ['help', 'frobnicate'], ['replay']]) {
        const r = matchd(args);
        assertCodedLine(r, 'MATCHD_USAGE', 2);
      }
      assert.match(matchd(['score', '--bogus']).stderr, /Run 'matchd help score' for usage/);
    });

    test('a config file that is not there says how to get one', () => {
      assertCodedLine(matchd(['validate', 'no-such.yaml']), 'MATCHD_CONFIG_INVALID', 1, /no-such\.yaml is invalid/);
      assert.match(matchd(['validate', 'no-such.yaml']).stderr, /cannot read: ENOENT, no such file \(`matchd init DIR` writes one\)/);
    });

    test('--debug (or MATCHD_DEBUG=1) adds the stack; without it there is none', () => {
      const plain = matchd(['score', '--dir', 'no-such-folder']);
      assert.doesNotMatch(plain.stderr, /\n\s+at /);
      const debug = matchd(['score', '--dir', 'no-such-folder', '--debug']);
      assertCodedLineWithStack(debug);
      assertCodedLineWithStack(matchd(['score', '--dir', 'no-such-folder'], { env: { MATCHD_DEBUG: '1' } }));
    });
  });

  describe('help and version', () => {
    for (const command of ['score', 'run', 'validate', 'replay', 'init', 'model', 'journal', 'endpoint']) {
      test(`matchd ${command} --help: its usage and examples, exit 0 (was exit 2 with the parser's text)`, () => {
        const r = matchd([command, '--help']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^matchd ${command} `));
        assert.match(r.stdout, /\nExamples:\n {2}matchd /);
        assert.equal(matchd(['help', command]).stdout, r.stdout, 'matchd help COMMAND says the same');
        assert.equal(matchd([command, '-h']).stdout, r.stdout);
      });
    }

    test('matchd help lists every command, including init and --version', () => {
      const r = matchd(['help']);
      assert.equal(r.code, 0);
      for (const c of ['init', 'run', 'validate', 'score', 'replay', 'model import', 'journal check', 'endpoint list', '--version']) assert.ok(r.stdout.includes(`matchd ${c}`), c);
    });

    test('--version: matchd, Node, ONNX Runtime and the execution providers', () => {
      const version = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version;
      for (const flag of ['--version', '-V', 'version']) {
        const r = matchd([flag]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split('\n');
        assert.match(lines[0]!, new RegExp(`^matchd ${version.replace(/\./g, '\\.')} \\(`));
        assert.equal(lines[1], `node ${process.version}`);
        assert.match(lines[2]!, /^onnxruntime 1\.29\.0 \(C API \d+\)$/);
        assert.match(lines[3]!, /^execution providers: cpu; cuda/);
      }
    });
  });

  describe('score: the mistakes a first try makes', () => {
    test('`score a.jpg b.jpg red` refuses b.jpg as a text, saying how to score several images', () => {
      const r = matchd(['score', 'samples/red.jpg', 'samples/blue.png', 'red']);
      assertCodedLine(r, 'MATCHD_USAGE', 2, /"samples\/blue\.png" is an image file, not a text: score takes one IMAGE and then texts; for several images .* --dir/);
      assert.equal(r.stdout, '', 'nothing was scored');
      // A text that merely looks like a file name, but is none here, is a text.
      const ok = matchd(['score', 'samples/red.jpg', 'red.png', '--json']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(JSON.parse(ok.stdout).results.map((x: { text: string }) => x.text), ['red.png']);
    });

    test('--dir on a folder without images says so (MATCHD_NOTHING_TO_DO, exit 1) and names what it skipped', () => {
      const dir = tmpDir();
      fs.writeFileSync(path.join(dir, 'notes.pdf'), 'x');
      const r = matchd(['score', '--dir', dir, '--texts', 'samples/red.txt']);
      assert.match(r.stderr, /skipped 1 file\(s\): 1 not an image extension/);
      assertCodedLine({ ...r, stderr: r.stderr.slice(r.stderr.indexOf('matchd: MATCHD_')) }, 'MATCHD_NOTHING_TO_DO', 1, /no image files in .*; 1 other file\(s\) skipped/);
      assert.equal(r.stdout, '');
      const empty = matchd(['score', '--dir', tmpDir(), '--texts', 'samples/red.txt']);
      assertCodedLine(empty, 'MATCHD_NOTHING_TO_DO', 1, /no image files in .* \(--recursive looks in sub-folders\)/);
    });

    test('IMAGE --texts FILE: the file\'s texts after the ones given', () => {
      const r = matchd(['score', 'samples/red.jpg', 'green', '--texts', 'samples/red.txt', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).results.map((x: { text: string }) => x.text), ['green', 'a red product', 'a blue product']);
    });
  });
});

function assertCodedLineWithStack(r: ReturnType<typeof matchd>): void {
  assert.equal(r.code, 1);
  assert.match(r.stderr.split('\n')[0]!, /^matchd: MATCHD_PATH_INVALID: /);
  assert.match(r.stderr, /\n\s+at /, 'the stack follows with --debug');
}
