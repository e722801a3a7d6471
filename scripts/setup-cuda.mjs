#!/usr/bin/env node
// `npm run setup:cuda [-- --from DIR]`: put the ONNX Runtime CUDA execution provider next to the addon,
// where ONNX Runtime looks for it (the folder of libonnxruntime.so.1).
//   default:     fetch com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 through npm (~220 MB unpacked), check it
//   --from DIR:  link the provider libraries already in DIR (e.g. staged on a GPU machine without a registry)
// The provider itself needs the CUDA 13 runtime, cuBLAS/cuBLASLt 13 and cuDNN 9 on LD_LIBRARY_PATH at run time.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CUDA, assertSupportedPlatform, extract, npmPack } from './ort-package.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dest = path.join(root, 'build', 'Release');

function main() {
  assertSupportedPlatform();
  if (!fs.existsSync(path.join(dest, 'matchd.node'))) throw new Error('build the addon first: npm install');
  const i = process.argv.indexOf('--from');
  if (i > 0) {
    const from = path.resolve(process.argv[i + 1] ?? '');
    for (const lib of CUDA.libs) {
      const src = path.join(from, lib);
      if (!fs.existsSync(src)) throw new Error(`${src} not found`);
      fs.rmSync(path.join(dest, lib), { force: true });
      fs.symlinkSync(src, path.join(dest, lib));
    }
    console.log(`matchd: linked the CUDA provider from ${from} into ${dest}`);
    return;
  }
  console.log(`matchd: fetching ${CUDA.spec} through npm (large download)...`);
  const { tmp, file } = npmPack(CUDA.spec, CUDA.integrity);
  try {
    extract(file, tmp, CUDA.libs.map((l) => `${CUDA.libDir}/${l}`));
    for (const lib of CUDA.libs) {
      fs.rmSync(path.join(dest, lib), { force: true });
      fs.copyFileSync(path.join(tmp, CUDA.libDir, lib), path.join(dest, lib));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`matchd: CUDA provider installed in ${dest}`);
}

try {
  main();
} catch (err) {
  console.error(`matchd setup:cuda: ${err.message}`);
  process.exit(1);
}
