// Where ONNX Runtime comes from, pinned: the npm package, its integrity, and what we take from it.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ORT_VERSION = '1.29.0';

/** The CPU core (headers + libonnxruntime.so). Integrity as published on the npm registry. */
export const CORE = {
  spec: 'com.github.asus4.onnxruntime@0.4.9',
  integrity: 'sha512-BkzxduSZ9IkeDP6Q8lz2TFU2ie7hSSvS7ZIfzMooExoq0CNzJnuuGaUJ7IsojBgqO4ouD1jXah8OYyJbCN29Fg==',
  headers: 'package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers',
  libs: ['libonnxruntime.so', 'libonnxruntime_providers_shared.so'],
  libDir: 'package/Plugins/Linux/x64',
};

/** The CUDA execution provider built for that exact core (optional, `npm run setup:cuda`). */
export const CUDA = {
  spec: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9',
  integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==',
  libs: ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'],
  libDir: 'package/Plugins/Linux/x64',
};

export function assertSupportedPlatform() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `matchd supports linux-x64 only (this is ${process.platform}-${process.arch}): ` +
        'its engine links the ONNX Runtime build shipped for linux-x64.',
    );
  }
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stderr || r.stdout}`);
  return r.stdout;
}

/**
 * Fetch a package tarball through npm (so the user's registry, proxy and cache settings apply),
 * check it against `integrity` when one is pinned, and return its path in a fresh temp folder.
 */
export function npmPack(spec, integrity) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-ort-'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // --prefer-offline: the version and integrity are pinned, so a copy in npm's cache is the one we want; a reinstall
  // (or a project installing matchd from a tarball) then downloads nothing. `npm install --offline` is honoured too.
  const out = run(npm, ['pack', spec, '--json', '--prefer-offline', '--pack-destination', tmp], { cwd: tmp });
  const info = JSON.parse(out.slice(out.indexOf('[')))[0];
  const file = path.join(tmp, info.filename);
  const [algo, expected] = (integrity ?? info.integrity).split('-');
  const actual = createHash(algo).update(fs.readFileSync(file)).digest('base64');
  if (actual !== expected) {
    throw new Error(`integrity check failed for ${spec}: expected ${algo}-${expected}, got ${algo}-${actual}`);
  }
  return { tmp, file, integrity: `${algo}-${actual}` };
}

/** Extract only `members` (tar wildcards) of a .tgz into `dest`. */
export function extract(file, dest, members) {
  fs.mkdirSync(dest, { recursive: true });
  run('tar', ['-xzf', file, '-C', dest, '--wildcards', ...members]);
}
