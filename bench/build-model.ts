/**
 * Build the benchmark model packages (random weights, fixed seed) with bench/model/build-clip.py.
 * Not a scenario itself; the scenarios call `ensureBenchModel()`, which builds a missing package on first use.
 *
 *   node --import tsx bench/build-model.ts [--tiny] [--force]
 *
 *   (default)  bench/models/clip-b32-random: CLIP ViT-B/32-shaped, vision 87.8 M / text 63.4 M parameters
 *   --tiny     bench/models/clip-tiny-random: same inputs, outputs and preprocessing, ~0.3 M / 3.2 M parameters
 *   --force    rebuild even if the package exists
 *
 * Needs Debian's PyTorch and ONNX for /usr/bin/python3 (this script installs nothing):
 *   apt-get install -y python3-torch python3-onnx
 * Models are built, never committed (/bench/models/ is git-ignored). On 2 cores the ViT-B/32 export takes ~30 s.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { benchDir, isMain, progress } from './lib.ts';

export type BenchModel = 'clip-b32-random' | 'clip-tiny-random';

export const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(benchDir, 'model', 'build-clip.py');

export function benchModelDir(name: BenchModel): string {
  return path.join(benchDir, 'models', name);
}

/** Parameter counts and the rest of what build-clip.py recorded. */
export interface BuildInfo {
  name: string;
  seed: number;
  torch: string;
  opset: number;
  visionParams: number;
  textParams: number;
  visionGFLOP: number;
}

export function buildInfo(name: BenchModel): BuildInfo {
  return JSON.parse(fs.readFileSync(path.join(benchModelDir(name), 'build-info.json'), 'utf8')) as BuildInfo;
}

/** Build the package if it is missing (or `force`); returns its folder. Throws with the fix when Python lacks torch/onnx. */
export function ensureBenchModel(name: BenchModel, force = false): string {
  const dir = benchModelDir(name);
  const complete = ['model.yaml', 'image.onnx', 'text.onnx', 'tokenizer.json', 'build-info.json', 'hf/onnx/vision_model.onnx']
    .every((f) => fs.existsSync(path.join(dir, f)));
  if (complete && !force) return dir;
  const check = spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' });
  if (check.status !== 0) {
    throw new Error(
      `building ${name} needs PyTorch and ONNX for ${PYTHON} (not installed by this script): ` +
        '`apt-get install -y python3-torch python3-onnx` (Debian), or set BENCH_PYTHON to a Python that has them.\n' +
        (check.stderr || check.error?.message || ''),
    );
  }
  progress(`building ${name} (bench/model/build-clip.py${name === 'clip-tiny-random' ? ' --tiny' : ''}) ...`);
  const args = [SCRIPT, '--force', ...(name === 'clip-tiny-random' ? ['--tiny'] : [])];
  const r = spawnSync(PYTHON, ['-W', 'ignore', ...args], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`bench/model/build-clip.py failed (${r.signal ?? `exit ${r.status}`})`);
  return dir;
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  try {
    const dir = ensureBenchModel(args.includes('--tiny') ? 'clip-tiny-random' : 'clip-b32-random', args.includes('--force'));
    progress(`model package: ${path.relative(process.cwd(), dir)}`);
  } catch (err) {
    progress(`build-model: ${(err as Error).message}`);
    process.exit(1);
  }
}
