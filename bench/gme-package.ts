/**
 * The GME benchmark's model package: a GME-Qwen2-VL-2B-shaped package with random weights, built by the project's
 * own tools the way a user builds the real one (a checkpoint in the Hugging Face layout → `matchd model import`).
 * Not a scenario itself (bench/gme.ts uses it).
 *
 *   node --import tsx bench/gme-package.ts [--force]     # build bench/models/gme-2b-random if missing
 *
 * Building: tools/gme/make_tiny_checkpoint.py --size 2b --dtype BF16 --shards 2 (real GME-2B shapes, random weights,
 * ~4.4 GB, needs numpy) into bench/models/gme-2b-ckpt, then `matchd model import` (needs numpy + onnx) into
 * bench/models/gme-2b-random (float32, ~8.8 GB); the checkpoint is deleted afterwards. About 3 minutes on 2 cores,
 * 13 GB of disk while it runs. Never committed (/bench/models/ is git-ignored).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { benchDir, isMain, progress, repoRoot } from './lib.ts';

export const GME_BENCH_PACKAGE = path.join(benchDir, 'models', 'gme-2b-random');
const CHECKPOINT = path.join(benchDir, 'models', 'gme-2b-ckpt');
const PYTHON = process.env.BENCH_PYTHON ?? process.env.MATCHD_PYTHON ?? '/usr/bin/python3';

/** What the scenario reports about the package it ran. */
export interface GmePackageInfo {
  dir: string;
  name: string;
  weights: string;
  embeddingSize: number;
  /** Bytes of each graph's external data (the weights). */
  visionBytes: number;
  decoderBytes: number;
  /** From import.json, when the package has one. */
  importedFrom: string | null;
  importSeconds: number | null;
}

function run(what: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
  progress(`gme-package: ${what}: ${[cmd, ...args].map((a) => path.relative(repoRoot, a) || a).join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: repoRoot, stdio: ['ignore', 2, 2], env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${what} failed (${r.signal ?? `exit ${r.status}`}${r.error ? `: ${r.error.message}` : ''})`);
}

/** Build bench/models/gme-2b-random when it is missing (or `force`); returns its folder. */
export function ensureGmeBenchPackage(force = false): string {
  const dir = GME_BENCH_PACKAGE;
  const complete = ['model.yaml', 'vision.onnx', 'vision.onnx.data', 'decoder.onnx', 'decoder.onnx.data', 'tokenizer.json']
    .every((f) => fs.existsSync(path.join(dir, f)));
  if (complete && !force) return dir;
  const check = spawnSync(PYTHON, ['-c', 'import numpy, onnx'], { encoding: 'utf8' });
  if (check.status !== 0) {
    throw new Error(
      `building the GME benchmark package needs numpy and onnx for ${PYTHON}: \`apt-get install -y python3-numpy ` +
        `python3-onnx\` (Debian), or set BENCH_PYTHON; or pass --package DIR to use a package you have.\n${check.stderr ?? ''}`,
    );
  }
  fs.rmSync(CHECKPOINT, { recursive: true, force: true });
  run('random GME-2B-shaped checkpoint (~4.4 GB, ~2 min)', PYTHON,
    [path.join(repoRoot, 'tools/gme/make_tiny_checkpoint.py'), CHECKPOINT, '--size', '2b', '--dtype', 'BF16', '--shards', '2']);
  run('import (float32, ~8.8 GB, ~1 min)', process.execPath,
    [path.join(repoRoot, 'bin/matchd.mjs'), 'model', 'import', CHECKPOINT, '--out', dir, '--force'], { MATCHD_PYTHON: PYTHON });
  fs.rmSync(CHECKPOINT, { recursive: true, force: true }); // 4.4 GB the benchmark does not need
  return dir;
}

/** Check that `dir` is a gme-qwen2-vl package and describe it (throws a message naming the problem). */
export function describeGmePackage(dir: string): GmePackageInfo {
  const yamlFile = path.join(dir, 'model.yaml');
  if (!fs.existsSync(yamlFile)) throw new Error(`--package ${dir}: no model.yaml there`);
  const yaml = fs.readFileSync(yamlFile, 'utf8');
  if (!/^family:\s*gme-qwen2-vl\s*$/m.test(yaml)) throw new Error(`--package ${dir}: not a gme-qwen2-vl package (model.yaml family)`);
  const field = (re: RegExp) => re.exec(yaml)?.[1]?.replace(/^"|"$/g, '') ?? 'unknown';
  const size = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.statSync(path.join(dir, f)).size : 0);
  let importedFrom: string | null = null;
  let importSeconds: number | null = null;
  try {
    const imp = JSON.parse(fs.readFileSync(path.join(dir, 'import.json'), 'utf8')) as {
      source?: { dir?: string; tensorDtypes?: string[] }; seconds?: number;
    };
    importedFrom = `${imp.source?.dir ?? '?'} (${(imp.source?.tensorDtypes ?? []).join(', ')})`;
    importSeconds = imp.seconds ?? null;
  } catch {
    // a package without import.json (written by hand) is fine
  }
  return {
    dir,
    name: field(/^name:\s*(.+?)\s*$/m),
    weights: field(/^\s*weights:\s*(\S+)/m),
    embeddingSize: Number(field(/^embeddingSize:\s*(\d+)/m)),
    visionBytes: size('vision.onnx.data'),
    decoderBytes: size('decoder.onnx.data'),
    importedFrom,
    importSeconds,
  };
}

if (isMain(import.meta.url)) {
  try {
    const dir = ensureGmeBenchPackage(process.argv.includes('--force'));
    progress(`model package: ${path.relative(process.cwd(), dir)}`);
  } catch (err) {
    progress(`gme-package: ${(err as Error).message}`);
    process.exit(1);
  }
}
