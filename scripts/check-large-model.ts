/**
 * A measured check (not part of `npm test`: it writes over 2 GB and takes about a minute) that a model over 2 GB
 * imports and runs. ONNX files cannot exceed 2 GB (protobuf), so such models keep their weights in external data,
 * as transformers.js's large exports do (`*.onnx_data`). The check builds a random CLIP export twice, the second
 * time with the text tower's token table grown past the size given (unused rows), imports both and compares text
 * embeddings: identical when the large one loads and runs correctly.
 *
 *   node --import tsx scripts/check-large-model.ts [--gb 2.2] [--dir /tmp/matchd-large] [--keep]
 *
 * The folder is removed at the end unless --keep.
 *
 * Needs /usr/bin/python3 with python3-torch, python3-onnx and python3-numpy, and ~2.5× the size in free disk space.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Matcher } from '../src/core/matcher.ts';
import { importHfOnnx } from '../src/core/model/import/hf-write.ts';
import { cosine } from '../src/core/scoring.ts';

const { values } = parseArgs({ options: { gb: { type: 'string', default: '2.2' }, dir: { type: 'string', default: '/tmp/matchd-large' }, keep: { type: 'boolean', default: false } } });
const gb = Number(values.gb);
const dir = path.resolve(values.dir);
const builder = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'hf', 'build-hf-model.py');
const texts = ['a photo of a dog', 'a red car parked on the street', 'fireworks over the river'];

function build(out: string, extra: string[]): number {
  const t0 = performance.now();
  fs.rmSync(out, { recursive: true, force: true });
  const r = spawnSync('/usr/bin/python3', ['-W', 'ignore', builder, '--family', 'clip', '--layout', 'split', '--out', out, ...extra], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`build-hf-model.py failed (exit ${r.status})`);
  return performance.now() - t0;
}

async function embed(pkg: string): Promise<{ vectors: Float32Array[]; openMs: number; rssMb: number }> {
  const t0 = performance.now();
  const m = await Matcher.open(pkg);
  const openMs = performance.now() - t0;
  try {
    const vectors = (await m.embedTexts(texts)).map((t) => t.vector);
    return { vectors, openMs, rssMb: process.memoryUsage().rss / 1e6 };
  } finally {
    m.close();
  }
}

fs.mkdirSync(dir, { recursive: true });
const small = path.join(dir, 'small');
const large = path.join(dir, 'large');
build(small, []);
const buildMs = build(large, ['--grow-text-gb', String(gb)]);
const data = path.join(large, 'onnx', 'text_model.onnx_data');
const bytes = fs.statSync(data).size;
console.log(`built ${path.relative(dir, data)}: ${(bytes / 1e9).toFixed(2)} GB external data (+ ${fs.statSync(path.join(large, 'onnx', 'text_model.onnx')).size} B graph) in ${(buildMs / 1000).toFixed(1)} s`);

for (const p of ['small-pkg', 'large-pkg']) fs.rmSync(path.join(dir, p), { recursive: true, force: true });
await importHfOnnx(small, path.join(dir, 'small-pkg'));
let t0 = performance.now();
await importHfOnnx(large, path.join(dir, 'large-pkg'));
console.log(`import (read graphs, link files, open and smoke-run the package): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
t0 = performance.now();
const ref = await embed(path.join(dir, 'small-pkg'));
const big = await embed(path.join(dir, 'large-pkg'));
const worst = Math.min(...big.vectors.map((v, i) => cosine(v, ref.vectors[i]!)));
console.log(`Matcher.open of the large package: ${(big.openMs / 1000).toFixed(1)} s; process RSS after encoding: ${big.rssMb.toFixed(0)} MB`);
console.log(`text embeddings, large vs small package: min cos ${worst.toFixed(6)} ${worst > 0.99999 ? '(identical: OK)' : '(DIFFERENT: FAIL)'}`);
process.exitCode = bytes > gb * 1e9 && worst > 0.99999 ? 0 : 1;
if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
