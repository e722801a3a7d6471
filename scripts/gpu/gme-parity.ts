/**
 * matchd's side of the GME parity check (scripts/gpu/gme-parity.sh runs it; see there for the whole flow).
 *
 *   node --import tsx scripts/gpu/gme-parity.ts prepare --package PKG --work DIR [--python PY]
 *       Images (6 sizes and aspect ratios, PNG) and texts (4 lengths) → DIR/ref-in/*.npy, one mixed batch in
 *       tools/gme/reference.py's format for the reference: pixels by tools/gme/preprocess_reference.py (Pillow +
 *       numpy, independent of matchd) when PY has them, else by matchd's own preprocessing (said in items.json);
 *       prompts written as plain strings and tokenised with `tokenizers`, not by the runtime's prompt code.
 *       Throughput inputs too: DIR/tp-256, DIR/tp-1280 (one image of exactly 256 / 1280 visual tokens) and
 *       DIR/tp-texts (16 short queries), for matchd and for the reference's timing.
 *   ... embed --package PKG --work DIR --tag NAME [--provider cpu|cuda] [--throughput N]
 *       matchd's embeddings of the same items (Matcher, as a user runs it) → DIR/emb-NAME.npy, and DIR/emb-NAME.json
 *       (provider really used, load time, with --throughput: per-image seconds at 256 and 1280 tokens, one at a time
 *       and in a batch, queries per second). A provider that cannot start is recorded there (code, message), exit 3.
 *   ... compare --work DIR --out OUT [--reference-label TEXT]
 *       Every emb-*.npy against DIR/ref.npy: cosine per item (target ≥ 0.9999 for float32 packages); each float16
 *       package against the float32 one on CPU: image·text score differences (target |Δscore| < 0.005, the
 *       score being (cos − 0.1) / 0.4, GME's [0.1, 0.5] range, unclamped so that nothing hides in the clamp);
 *       throughput. Writes OUT/gme-parity.json and OUT/gme-parity.md, prints the summary; exit 1 if a target is missed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Tokenizer } from 'tokenizers';
import { ensureJpegs } from '../../bench/lib.ts';
import { QUERIES } from '../../bench/gme-inputs.ts';
import { compare } from './gme-parity-compare.ts';
import { writeNpy } from './npy.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Width × height: upscaled to the 256-token minimum, wide, tall, a sliver, a photo, one at the 1280 cap. */
const SIZES: [number, number][] = [[64, 64], [300, 200], [120, 500], [900, 90], [640, 480], [1100, 1000]];
const TEXTS = ['cat', 'a red cat on a blue mat',
  'Find the photo where a small dog with a long tail sits next to a green car, under a tree, in the rain, at night',
  'Ünïcödé and digits 12345'];
const TEMPLATE = '<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{vision}{text}<|im_end|>\n<|im_start|>assistant\n<|endoftext|>';
const PAD = 151643;

/** The GME prompt as a plain string (the reference's template, filled by hand). */
function prompt(item: { image: number } | { text: string }): string {
  const image = 'image' in item;
  return TEMPLATE.replace('{instruction}', image ? 'You are a helpful assistant.' : 'Find an image that matches the given text.')
    .replace('{vision}', image ? `<|vision_start|>${'<|image_pad|>'.repeat(item.image)}<|vision_end|>` : '')
    .replace('{text}', image ? '' : item.text);
}

async function tokenize(tokenizerFile: string, prompts: string[]) {
  const tok = Tokenizer.fromFile(tokenizerFile);
  const rows = await Promise.all(prompts.map(async (p) => (await tok.encode(p)).getIds()));
  const s = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * s).fill(BigInt(PAD));
  const mask = new BigInt64Array(rows.length * s);
  rows.forEach((r, b) => r.forEach((id, j) => {
    ids[b * s + j] = BigInt(id);
    mask[b * s + j] = 1n;
  }));
  return { ids, mask, dims: [rows.length, s] };
}

async function gradient(file: string, w: number, h: number, seed: number): Promise<void> {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = (x * 255 / w + seed * 40) % 256;
      data[i + 1] = (y * 255 / h + seed * 70) % 256;
      data[i + 2] = ((x + y) * 3 + seed * 90) % 256;
    }
  }
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

interface Pixels { values: Float32Array; grid: [number, number, number] }

/** Pixel values by the Pillow + numpy reference, or null when `python` lacks Pillow or numpy. */
function pillowPixels(python: string, files: string[], out: string): Pixels[] | null {
  const ok = spawnSync(python, ['-c', 'import PIL, numpy'], { encoding: 'utf8' });
  if (ok.status !== 0) return null;
  const r = spawnSync(python, [path.join(repoRoot, 'tools/gme/preprocess_reference.py'), 'process', '--exif-transpose', '--out', out, ...files], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`preprocess_reference.py failed: ${r.stderr}`);
  const info = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')) as { grid: [number, number, number] }[];
  return info.map((x, n) => {
    const b = fs.readFileSync(path.join(out, `${n}.pixel_values.f32`));
    return { values: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), grid: x.grid };
  });
}

async function matchdPixels(pkg: string, files: string[]): Promise<Pixels[]> {
  const { readPackage } = await import('../../src/core/model/package.ts');
  const { prepareGmeImage } = await import('../../src/core/model/families/gme-qwen2-vl/preprocess.ts');
  const spec = (readPackage(pkg).manifest as { gme: { image: Parameters<typeof prepareGmeImage>[1] } }).gme.image;
  return Promise.all(files.map(async (f) => {
    const p = await prepareGmeImage(f, spec);
    return { values: p.pixelValues, grid: p.grid };
  }));
}

/** One reference batch: images (as document prompts) then texts (as queries). */
async function writeBatch(dir: string, tokenizer: string, pixels: Pixels[], texts: string[]): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const t = await tokenize(tokenizer, [...pixels.map((p) => prompt({ image: (p.grid[1] * p.grid[2]) / 4 })), ...texts.map((text) => prompt({ text }))]);
  writeNpy(path.join(dir, 'input_ids.npy'), t.ids, t.dims);
  writeNpy(path.join(dir, 'attention_mask.npy'), t.mask, t.dims);
  if (pixels.length) {
    const all = new Float32Array(pixels.reduce((n, p) => n + p.values.length, 0));
    pixels.reduce((at, p) => (all.set(p.values, at), at + p.values.length), 0);
    writeNpy(path.join(dir, 'pixel_values.npy'), all, [all.length / 1176, 1176]);
    writeNpy(path.join(dir, 'image_grid_thw.npy'), BigInt64Array.from(pixels.flatMap((p) => p.grid.map(BigInt))), [pixels.length, 3]);
  }
}

interface Items { pixels: 'pillow' | 'matchd'; images: string[]; texts: string[]; tp: { image256: string; image1280: string; queries: string[] } }

async function prepare(pkg: string, work: string, python: string): Promise<void> {
  fs.mkdirSync(path.join(work, 'images'), { recursive: true });
  const images: string[] = [];
  for (const [i, [w, h]] of SIZES.entries()) {
    images.push(path.join(work, 'images', `img${i}-${w}x${h}.png`));
    await gradient(images.at(-1)!, w, h, i);
  }
  const [image256] = await ensureJpegs(1, 448, 448);
  const [image1280] = await ensureJpegs(1, 1120, 896);
  const tpFiles = [image256!, image1280!];
  const tokenizer = path.join(pkg, 'tokenizer.json');
  let source: Items['pixels'] = 'pillow';
  let px = pillowPixels(python, [...images, ...tpFiles], path.join(work, 'pre'));
  if (!px) {
    source = 'matchd';
    px = await matchdPixels(pkg, [...images, ...tpFiles]);
  }
  await writeBatch(path.join(work, 'ref-in'), tokenizer, px.slice(0, images.length), TEXTS);
  await writeBatch(path.join(work, 'tp-256'), tokenizer, [px[images.length]!], []);
  await writeBatch(path.join(work, 'tp-1280'), tokenizer, [px[images.length + 1]!], []);
  await writeBatch(path.join(work, 'tp-texts'), tokenizer, [], QUERIES);
  const tokens = px.map((p) => (p.grid[1] * p.grid[2]) / 4);
  if (tokens.at(-2) !== 256 || tokens.at(-1) !== 1280) throw new Error(`throughput images give ${tokens.slice(-2)} visual tokens, not 256 and 1280`);
  const items: Items = { pixels: source, images, texts: TEXTS, tp: { image256: image256!, image1280: image1280!, queries: QUERIES } };
  fs.writeFileSync(path.join(work, 'items.json'), JSON.stringify(items, null, 1));
  console.log(`prepared ${images.length} images (pixels by ${source === 'pillow' ? 'the Pillow reference' : "matchd's preprocessing: no Pillow/numpy for " + python}) and ${TEXTS.length} texts in ${work}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function embed(pkg: string, work: string, tag: string, provider: 'cpu' | 'cuda', throughput: number): Promise<number> {
  const items = JSON.parse(fs.readFileSync(path.join(work, 'items.json'), 'utf8')) as Items;
  const info: Record<string, unknown> = { tag, package: pkg, requested: provider };
  const write = () => fs.writeFileSync(path.join(work, `emb-${tag}.json`), JSON.stringify(info, null, 1));
  const { Matcher } = await import('../../src/core/matcher.ts');
  let m: Awaited<ReturnType<typeof Matcher.open>>;
  const t0 = performance.now();
  try {
    m = await Matcher.open(pkg, { engine: { provider } });
  } catch (err) {
    const e = err as { code?: string; message: string };
    info.error = { code: e.code ?? 'ERROR', message: e.message };
    write();
    console.log(`${tag}: ${provider} could not start: ${e.code ?? ''} ${e.message.split('\n')[0]}`);
    return 3;
  }
  info.loadSeconds = (performance.now() - t0) / 1000;
  info.provider = m.provider;
  info.weights = (m.manifest as { gme?: { weights?: string } }).gme?.weights;
  try {
    const imgs = await m.embedImages(items.images);
    const texts = await m.embedTexts(items.texts, { cache: false });
    const rows = [...imgs.map((e, i) => {
      if (!e.ok) throw new Error(`image ${items.images[i]}: ${e.error.message}`);
      return e.vector;
    }), ...texts.map((t) => t.vector)];
    const hidden = rows[0]!.length;
    const all = new Float32Array(rows.length * hidden);
    rows.forEach((r, i) => all.set(r, i * hidden));
    writeNpy(path.join(work, `emb-${tag}.npy`), all, [rows.length, hidden]);
    if (throughput > 0) {
      const time = async (fn: () => Promise<unknown>) => {
        await fn(); // warm-up: first run at this shape
        const s: number[] = [];
        for (let i = 0; i < throughput; i++) {
          const t = performance.now();
          await fn();
          s.push((performance.now() - t) / 1000);
        }
        return median(s);
      };
      const batch = (file: string, n: number) => () => m.embedImages(new Array<string>(n).fill(file));
      const q = items.tp.queries;
      info.throughput = {
        runs: throughput,
        image256: { oneSeconds: await time(batch(items.tp.image256, 1)), batch: 8, batchSeconds: await time(batch(items.tp.image256, 8)) },
        image1280: { oneSeconds: await time(batch(items.tp.image1280, 1)), batch: 3, batchSeconds: await time(batch(items.tp.image1280, 3)) },
        queries: { count: q.length, batchSeconds: await time(() => m.embedTexts(q, { cache: false })) },
      };
    }
  } finally {
    m.close();
  }
  write();
  console.log(`${tag}: ${String(info.provider)} ${JSON.stringify(info.throughput ?? {})}`);
  return 0;
}

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      package: { type: 'string' }, work: { type: 'string' }, python: { type: 'string', default: process.env.MATCHD_PYTHON ?? 'python3' },
      tag: { type: 'string' }, provider: { type: 'string', default: 'cpu' }, throughput: { type: 'string', default: '0' },
      out: { type: 'string' }, 'reference-label': { type: 'string', default: 'reference' },
    },
  });
  const need = (k: keyof typeof values) => {
    const v = values[k];
    if (typeof v !== 'string' || !v) throw new Error(`${command}: --${k} is required`);
    return v;
  };
  if (command === 'prepare') {
    await prepare(path.resolve(need('package')), path.resolve(need('work')), values.python);
    return 0;
  }
  if (command === 'embed') {
    if (values.provider !== 'cpu' && values.provider !== 'cuda') throw new Error(`--provider: cpu or cuda, not '${values.provider}'`);
    return embed(path.resolve(need('package')), path.resolve(need('work')), need('tag'), values.provider, Number(values.throughput));
  }
  if (command === 'compare') {
    return compare(path.resolve(need('work')), path.resolve(need('out')), values['reference-label']!);
  }
  throw new Error(`usage: gme-parity.ts prepare|embed|compare ... (see the header of ${path.relative(process.cwd(), fileURLToPath(import.meta.url))})`);
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`gme-parity: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
