// matchd as a consumer gets it: `npm pack`, then installed into a temporary project with plain npm — offline, so
// nothing may be fetched: npm's cache serves the dependencies and the ONNX Runtime package the addon build needs (as
// after the checkout's own `npm install`). Then plain `node` imports the library, TypeScript checks a consumer
// against the shipped declarations, and the CLI runs from the installed package without a TypeScript loader.
// The install compiles matchd's addon: about a minute on a 2-core machine.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanupTmpDirs, tmpDir } from '../fixtures/models.ts';
import { repoRoot } from '../fixtures/packages.ts';

interface Packed {
  filename: string;
  integrity: string;
  files: { path: string }[];
}

let root = '';
let app = '';
let packed: Packed;
let installLog = '';

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeout = 120_000) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error };
}

/**
 * The consumer's lockfile: matchd from the tarball, and every other package exactly as in the checkout's lockfile
 * (its runtime dependencies only), so `npm ci --offline` resolves everything from npm's cache.
 */
function consumerLock(): object {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8'));
  const spec = `file:../${packed.filename}`;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: { matchd: spec } },
    'node_modules/matchd': {
      version: pkg.version, resolved: spec, integrity: packed.integrity, hasInstallScript: true, license: pkg.license,
      os: pkg.os, cpu: pkg.cpu, engines: pkg.engines, bin: pkg.bin, dependencies: pkg.dependencies,
    },
  };
  for (const [key, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) if (key && !entry.dev) packages[key] = entry;
  return { name: 'consumer', lockfileVersion: 3, requires: true, packages };
}

describe('package: installed from its tarball into a plain Node project', () => {
  before(() => {
    root = tmpDir('matchd-consumer-');
    app = path.join(root, 'app');
    fs.mkdirSync(app);
    // npm pack runs `prepare` (the build) first, as `npm publish` would.
    const p = run('npm', ['pack', '--json', '--pack-destination', root], repoRoot);
    assert.equal(p.code, 0, p.stderr);
    packed = JSON.parse(p.stdout.slice(p.stdout.indexOf('[')))[0];
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
      name: 'consumer', private: true, type: 'module', dependencies: { matchd: `file:../${packed.filename}` },
      allowScripts: { matchd: true, 'better-sqlite3': true }, // npm 11 runs only the install scripts a project allows
    }, null, 2));
    fs.writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify(consumerLock(), null, 2));
    // The dependencies' own install scripts are skipped (better-sqlite3 would compile SQLite for a minute or two: the
    // library and `score` open no journal); matchd's runs, as `npm install` runs it: ONNX Runtime, then the addon.
    const i = run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], app, {}, 10 * 60_000);
    installLog = `${i.stdout}\n${i.stderr}`;
    if (i.code === 0) {
      const b = run('npm', ['rebuild', 'matchd', '--offline', '--foreground-scripts'], app, {}, 10 * 60_000);
      installLog += `\n${b.stdout}\n${b.stderr}`;
      Object.assign(i, { code: b.code });
    }
    if (i.code !== 0 && /ENOTCACHED/.test(installLog)) {
      throw new Error(`a package is not in npm's cache, and this test installs offline (${installLog.match(/request to \S+/)?.[0]}). ` +
        'Run `npm install` in the checkout once online (for ONNX Runtime: rm -rf deps && npm run build:native).');
    }
    assert.equal(i.code, 0, installLog);
  });
  after(cleanupTmpDirs);

  test('the tarball: compiled JavaScript with declarations, the addon sources, the demo model; no TypeScript sources', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/core/journal-pg/thread.mjs', 'dist/ui/assets/ui.css', 'dist/ui/assets/ui.js', 'bin/matchd.mjs', 'native/addon.cc', 'CMakeLists.txt', 'scripts/install.mjs', 'models/demo/model.yaml', 'config/default.yaml', 'deploy/matchd.service', 'tools/coded_tool.py', 'tools/gme/export.py', 'tools/quantize/quantize.py']) {
      assert.ok(files.includes(f), f);
    }
    assert.deepEqual(files.filter((f) => /^(src|test|bench)\/|\.ts$/.test(f) && !f.endsWith('.d.ts')), []);
  });

  test('installed offline, the addon built against the cached ONNX Runtime; no TypeScript loader or compiler came along', () => {
    assert.match(installLog, /matchd: fetching ONNX Runtime 1\.29\.0 \(com\.github\.asus4\.onnxruntime@0\.4\.9\) through npm/);
    assert.ok(fs.existsSync(path.join(app, 'node_modules', 'matchd', 'build', 'Release', 'matchd.node')));
    assert.ok(fs.existsSync(path.join(app, 'node_modules', 'matchd', 'build', 'Release', 'libonnxruntime.so.1')));
    for (const dev of ['tsx', 'typescript', 'esbuild']) assert.ok(!fs.existsSync(path.join(app, 'node_modules', dev)), `${dev} is not installed`);
  });

  test("plain `node app.mjs`: import { Matcher } from 'matchd' scores an image", () => {
    fs.writeFileSync(path.join(app, 'app.mjs'), `
import { Matcher, MatchdError, ERROR_CODES } from 'matchd';
const m = await Matcher.open('node_modules/matchd/models/demo');
const results = await m.score('node_modules/matchd/samples/red.jpg', ['a red dress', 'a blue dress']);
let code;
try { await m.score('node_modules/matchd/samples/red.jpg', []); } catch (err) { code = err instanceof MatchdError ? err.code : 'not a MatchdError'; }
m.close();
console.log(JSON.stringify({ bands: results.map((r) => r.band), code, known: code in ERROR_CODES }));
`);
    const r = run(process.execPath, ['app.mjs'], app);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { bands: ['adopt', 'reject'], code: 'MATCHD_TEXT_INVALID', known: true });
    assert.equal(r.stderr, '');
  });

  test('a TypeScript consumer type-checks against the shipped declarations (NodeNext, strict)', () => {
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
      // skipLibCheck: the `tokenizers` package's own declarations do not compile; matchd's do (checked below).
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: [], typeRoots: [] },
      files: ['check.ts'],
    }));
    fs.writeFileSync(path.join(app, 'check.ts'), `
import { Matcher, InferenceSession, isMatchdError, type TextScore, type ErrorCode } from 'matchd';
const m: Matcher = await Matcher.open('node_modules/matchd/models/demo', { maxBatch: 4 });
const r: TextScore[] = await m.score('x.jpg', ['a red dress']);
const cosine: number = r[0]!.cosine;
// @ts-expect-error a band is a string: if the declarations were missing this would be 'any' and the directive unused
const wrong: number = r[0]!.band;
const code: ErrorCode = 'MATCHD_TEXT_INVALID';
export { cosine, wrong, code, InferenceSession, isMatchdError };
`);
    const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    // @types/node is not a dependency of the consumer: the checkout's is given to tsc for Node's own types. With
    // --skipLibCheck false every declaration file is checked too: matchd's must compile (the `tokenizers` package's
    // own do not, which is why consumers keep skipLibCheck on; its lines are the only ones allowed).
    const r = run(process.execPath, [tsc, '-p', '.', '--skipLibCheck', 'false', '--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules', '@types')], app);
    const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    assert.ok(errors.length === 0 || r.code !== 0, 'tsc reports errors with a non-zero exit');
    assert.deepEqual(errors.filter((l) => !l.startsWith('node_modules/tokenizers/')), [], r.stdout + r.stderr);
    assert.ok(!r.stdout.includes("Unused '@ts-expect-error'"), 'the declarations are typed, not any');
  });

  test('the CLI from the installed package: --version and score, nothing written to TMPDIR', () => {
    const tmp = tmpDir('matchd-consumer-tmp-');
    const v = run(path.join(app, 'node_modules', '.bin', 'matchd'), ['--version'], app, { TMPDIR: tmp });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, new RegExp(`^matchd \\d+\\.\\d+\\.\\d+ \\(${path.join(app, 'node_modules', 'matchd').replace(/[.]/g, '\\.')}\\)\n`));
    const s = run(path.join(app, 'node_modules', '.bin', 'matchd'), ['score', 'node_modules/matchd/samples/blue.png', 'blue', 'red', '--json'], app, { TMPDIR: tmp });
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(JSON.parse(s.stdout).results.map((x: { band: string }) => x.band), ['adopt', 'reject']);
    assert.equal(s.stderr, '', 'no stale-build warning: an installed package has no src/');
    assert.deepEqual(fs.readdirSync(tmp), []);
  });
});
