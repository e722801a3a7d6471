#!/usr/bin/env node
// `npm install` hook: fetch the pinned ONNX Runtime core (once), then build the addon with cmake-js.
// Output: build/Release/matchd.node next to libonnxruntime.so.1 (RPATH $ORIGIN).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CORE, ORT_VERSION, assertSupportedPlatform, extract, npmPack } from './ort-package.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ortDir = path.join(root, 'deps', `onnxruntime-${ORT_VERSION}`);
const stamp = path.join(ortDir, '.integrity');

function ensureOrt() {
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === CORE.integrity) return;
  console.log(`matchd: fetching ONNX Runtime ${ORT_VERSION} (${CORE.spec}) through npm...`);
  const { tmp, file } = npmPack(CORE.spec, CORE.integrity);
  try {
    extract(file, tmp, [`${CORE.headers}/*.h`, ...CORE.libs.map((l) => `${CORE.libDir}/${l}`)]);
    fs.rmSync(ortDir, { recursive: true, force: true });
    fs.mkdirSync(path.join(ortDir, 'lib'), { recursive: true });
    fs.cpSync(path.join(tmp, CORE.headers), path.join(ortDir, 'include'), { recursive: true });
    for (const lib of CORE.libs) fs.copyFileSync(path.join(tmp, CORE.libDir, lib), path.join(ortDir, 'lib', lib));
    fs.writeFileSync(stamp, CORE.integrity + '\n');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function buildAddon(rebuild) {
  const require = createRequire(import.meta.url);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, rebuild ? 'rebuild' : 'compile', '--directory', root, '--CDORT_DIR=' + ortDir];
  if (process.env.MATCHD_DEBUG_BUILD) args.push('--debug');
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    throw new Error('building the native addon failed (see the cmake output above); it needs cmake >= 3.18 and a C++17 compiler');
  }
}

try {
  assertSupportedPlatform();
  ensureOrt();
  buildAddon(process.argv.includes('--rebuild'));
} catch (err) {
  console.error(`matchd install: ${err.message}`);
  process.exit(1);
}
