/**
 * The GME benchmark's inputs, made once by the coordinator with matchd's own GME preprocessing and prompt code (the
 * functions the family runs), written to a temp folder, and read by each engine's child process, so that matchd
 * and the baseline run the same graphs on identical tensors. Not a scenario itself.
 *
 * Images: generated JPEG files whose sizes give exactly 256 and 1280 visual tokens through the real preprocessing
 * (GME's fetch_image, then the Qwen2-VL processor's smart_resize): 448×448 → 32×32 patches → 256 tokens (the
 * processor's minimum, 256·784 pixels); 1120×896 → 80×64 patches → 1280 tokens (its maximum, 1280·784 pixels).
 * Texts: short product-search style queries spelled with words the package's tokenizer has whole (the random
 * benchmark checkpoint's tokenizer has Qwen2's special tokens but only a few words; any other word would fall
 * apart into byte tokens and make the prompts longer than Qwen2's real vocabulary would).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureJpegs, progress } from './lib.ts';
import type { GmeManifest } from '../src/core/model/manifest.ts';
import { readPackage } from '../src/core/model/package.ts';
import { prepareGmeImage } from '../src/core/model/families/gme-qwen2-vl/preprocess.ts';
import { GmePrompts } from '../src/core/model/families/gme-qwen2-vl/prompt.ts';

export const IMAGE_SIZES = [
  { label: '256', width: 448, height: 448, tokens: 256 },
  { label: '1280', width: 1120, height: 896, tokens: 1280 },
] as const;
export type ImageLabel = (typeof IMAGE_SIZES)[number]['label'];

/** 16 queries of 2–11 words, as a shop's search box gets them. */
export const QUERIES = [
  'a photo of a red cat', 'a blue car', 'a dog on a blue car', 'a red car with a dog', 'a photo of a dog',
  'a cat on a red car', 'a photo of a blue car on the', 'a red dog', 'a dog with a cat on a red car',
  'a photo of a cat with a dog on a blue car', 'blue car', 'a photo of the red car', 'a cat on the blue car with a dog',
  'a dog', 'a photo of a red car on a blue car', 'a red cat on a dog',
];

export interface InputImage {
  label: ImageLabel;
  /** The JPEG file (what matchd is given). */
  file: string;
  width: number;
  height: number;
  /** Size after both reference resizes, [height, width]. */
  processed: [number, number];
  visualTokens: number;
  patches: number;
  /** Raw little-endian tensors (what the baseline is given): float32 [patches, 1176], int64 [patches, 2]. */
  pixelValuesFile: string;
  positionIdsFile: string;
  /** The document prompt's token ids (one image pad per visual token). */
  ids: number[];
}

export interface GmeInputs {
  package: string;
  hidden: number;
  padId: number;
  /** The names of the graphs' inputs and outputs (from model.yaml). */
  io: GmeManifest['gme']['vision'] & { decoder: GmeManifest['gme']['decoder'] };
  images: InputImage[];
  queries: string[];
  /** Each query's prompt token ids (query instruction, template), unpadded. */
  queryIds: number[][];
}

/** Prepare every input for `packageDir` into a temp folder; returns the path of its index (inputs.json). */
export async function prepareInputs(packageDir: string): Promise<string> {
  const pkg = readPackage(packageDir);
  const manifest = pkg.manifest as GmeManifest;
  const spec = manifest.gme.image;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'matchd-bench-gme-'));
  const prompts = await GmePrompts.load(pkg.files['gme.tokenizer']!, manifest.gme.text, 'gme');
  const images: InputImage[] = [];
  for (const s of IMAGE_SIZES) {
    const [file] = await ensureJpegs(1, s.width, s.height);
    const p = await prepareGmeImage(file!, spec);
    if (p.visualTokens !== s.tokens) {
      throw new Error(`${s.width}×${s.height} gives ${p.visualTokens} visual tokens with this package's image settings, not ${s.tokens}`);
    }
    const pixelValuesFile = path.join(out, `pixel-values-${s.label}.f32`);
    const positionIdsFile = path.join(out, `position-ids-${s.label}.i64`);
    fs.writeFileSync(pixelValuesFile, new Uint8Array(p.pixelValues.buffer, p.pixelValues.byteOffset, p.pixelValues.byteLength));
    fs.writeFileSync(positionIdsFile, new Uint8Array(p.positionIds.buffer, p.positionIds.byteOffset, p.positionIds.byteLength));
    images.push({
      label: s.label, file: file!, width: s.width, height: s.height,
      processed: [p.grid[1] * spec.patchSize, p.grid[2] * spec.patchSize],
      visualTokens: p.visualTokens, patches: p.grid[1] * p.grid[2], pixelValuesFile, positionIdsFile,
      ids: prompts.image(p.visualTokens).ids,
    });
  }
  const queryIds = (await prompts.texts(QUERIES)).map((q) => q.ids);
  const inputs: GmeInputs = {
    package: packageDir, hidden: manifest.embeddingSize, padId: manifest.gme.text.padId,
    io: { ...manifest.gme.vision, decoder: manifest.gme.decoder }, images, queries: QUERIES, queryIds,
  };
  const index = path.join(out, 'inputs.json');
  fs.writeFileSync(index, JSON.stringify(inputs));
  progress(`gme: inputs in ${out} (images ${images.map((i) => `${i.width}×${i.height} → ${i.visualTokens} tokens`).join(', ')}; ` +
    `${QUERIES.length} queries, ${Math.min(...queryIds.map((q) => q.length))}–${Math.max(...queryIds.map((q) => q.length))} prompt tokens)`);
  return index;
}

export function readInputs(index: string): GmeInputs {
  return JSON.parse(fs.readFileSync(index, 'utf8')) as GmeInputs;
}

/** A raw tensor file as a typed array over its own copy of the bytes. */
export function readFloat32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
export function readInt64(file: string): BigInt64Array {
  const b = fs.readFileSync(file);
  return new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Right-padded ids and attention mask [rows, longest] for `rows` prompts, as the family builds them. */
export function padRows(rows: number[][], padId: number): { ids: BigInt64Array; mask: BigInt64Array; dims: [number, number] } {
  const s = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * s).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * s);
  rows.forEach((r, i) => r.forEach((id, j) => {
    ids[i * s + j] = BigInt(id);
    mask[i * s + j] = 1n;
  }));
  return { ids, mask, dims: [rows.length, s] };
}
