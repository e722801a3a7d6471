/**
 * `npm run docs:calibration`: the README's calibration chart, made by `matchd calibrate` itself. Builds a labelled set
 * on the demo model whose classes overlap the way real ones do (32×32 images with a share p of red pixels: matches
 * around p = 0.4, non-matches around p = 0.22, against "a red product"), runs the command on it, and keeps its
 * histogram as docs/calibration-histogram.png.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { redShareImage, writePairs } from '../test/fixtures/calibrate.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A seeded normal(mean, sd) clipped to [0, 1] (Box–Muller over a small LCG: the same chart every run). */
function normals(n: number, mean: number, sd: number, seed: number): number[] {
  let s = seed;
  const u = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) + 1) / (2 ** 31 + 1);
  return Array.from({ length: n }, () => Math.min(1, Math.max(0, mean + sd * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()))));
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-docs-cal-'));
  try {
    const rows: { image: string; text: string; label: string }[] = [];
    for (const [label, shares] of [['match', normals(160, 0.4, 0.08, 7)], ['no-match', normals(240, 0.22, 0.08, 11)]] as const) {
      for (const [i, p] of shares.entries()) {
        const image = path.join(work, `${label}-${i}.png`);
        await redShareImage(image, p);
        rows.push({ image, text: 'a red product', label });
      }
    }
    const pairs = path.join(work, 'labels.csv');
    writePairs(pairs, rows);
    const out = path.join(work, 'report');
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'matchd.mjs'), 'calibrate', pairs, '--out', out], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`matchd calibrate exited ${r.status}`);
    const dest = path.join(root, 'docs', 'calibration-histogram.png');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(path.join(out, 'histogram.png'), dest);
    process.stdout.write(`wrote ${path.relative(root, dest)} (${(fs.statSync(dest).size / 1024).toFixed(0)} KiB)\n`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`docs:calibration: ${(err as Error).message}\n`);
  process.exit(1);
});
