/**
 * The GME-Qwen2-VL family: images are documents, texts are queries, both embedded by one Qwen2-VL decoder.
 *
 * An image is prepared on its own (decode, the reference's two smart resizes: preprocess.ts) and waits as 8-bit RGB
 * (an eighth of its float patches) until its batch runs; it costs its number of visual tokens (256–1280 with the
 * default limits). Encoding a batch: each image's patches are packed natively into one reused buffer, the vision tower
 * runs once per image, writing its visual tokens straight into the decoder's `image_embeds` input at that image's
 * rows (no copy), then the
 * decoder embeds every prompt of the batch at once (right padding; the graph splices the visual tokens in, pools the
 * last real token and L2-normalises). Rows are grouped by a token budget, longest with longest, so padding stays small.
 */
import { InferenceSession } from '../../../engine.ts';
import type { DecodeLimits, ImageInput } from '../../../image.ts';
import type { Tensor } from '../../../native.ts';
import { l2normalize } from '../../../scoring.ts';
import type { GmeManifest } from '../../manifest.ts';
import { invalidPackage, type ModelPackage } from '../../package.ts';
import type { EncodedText, FamilyModel, FamilyOptions, ModelFamily, PreparedImage } from '../family.ts';
import { openSessions } from '../sessions.ts';
import { checkGme } from './check.ts';
import { positionIds } from './position-ids.ts';
import { loadGmeImage, packGmeImage, patchRowLength, type GmeResizedImage } from './preprocess.ts';
import { GmePrompts, type Prompt } from './prompt.ts';

/** Visual tokens per image batch (the pipeline's cost budget): about three 1280-token images, or many small ones. */
const IMAGE_TOKEN_BUDGET = 4096;
/** Padded tokens (rows × longest row) per decoder run: bounds activation memory for a batch of long prompts. */
const DECODER_TOKEN_BUDGET = 8192;

interface GmeImage extends PreparedImage {
  resized: GmeResizedImage;
  positionIds: BigInt64Array;
  prompt: Prompt;
}

/** Indices of `lengths` in groups whose rows × longest stays within `budget` (a longer row goes alone), longest first. */
export function byTokenBudget(lengths: number[], budget: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]!);
  const groups: number[][] = [];
  let group: number[] = [];
  for (const i of order) {
    const longest = group.length ? lengths[group[0]!]! : lengths[i]!;
    if (group.length && (group.length + 1) * longest > budget) {
      groups.push(group);
      group = [];
    }
    group.push(i);
  }
  if (group.length) groups.push(group);
  return groups;
}

class GmeQwen2Vl implements FamilyModel<GmeImage> {
  readonly maxBatchCost = IMAGE_TOKEN_BUDGET;
  private readonly hidden: number;

  constructor(
    readonly manifest: GmeManifest,
    private readonly vision: InferenceSession,
    private readonly decoder: InferenceSession,
    private readonly prompts: GmePrompts,
    private readonly limits: DecodeLimits,
  ) {
    this.hidden = manifest.embeddingSize;
  }

  get provider(): string {
    return this.decoder.provider ?? 'disposed';
  }

  async prepareImage(input: ImageInput): Promise<GmeImage> {
    const spec = this.manifest.gme.image;
    const resized = await loadGmeImage(input, spec, this.limits);
    const prompt = this.prompts.image(resized.visualTokens); // refuses an image whose visual tokens do not fit maxLength
    const ids = positionIds(resized.grid[1], resized.grid[2], spec.mergeSize);
    return { resized, positionIds: ids, prompt, source: resized.source, cost: resized.visualTokens };
  }

  async encodeImages(images: GmeImage[]): Promise<Float32Array[]> {
    const out = new Array<Float32Array>(images.length);
    const { vision, image: spec } = this.manifest.gme;
    const row = patchRowLength(spec);
    const pixels = new Float32Array(Math.max(...images.map((i) => i.resized.patches)) * row);
    for (const group of byTokenBudget(images.map((i) => i.prompt.ids.length), DECODER_TOKEN_BUDGET)) {
      const rows = group.map((i) => images[i]!);
      const embeds = new Float32Array(rows.reduce((n, r) => n + r.cost, 0) * this.hidden);
      let at = 0;
      for (const img of rows) {
        const p = img.resized.patches;
        const data = pixels.subarray(0, p * row);
        await packGmeImage(img.resized, spec, data);
        await this.vision.run(
          {
            [vision.pixelValues]: { type: 'float32', dims: [1, p, row], data },
            [vision.positionIds]: { type: 'int64', dims: [p, 2], data: img.positionIds },
          },
          { [vision.output]: { type: 'float32', dims: [1, img.cost, this.hidden], data: embeds.subarray(at * this.hidden, (at + img.cost) * this.hidden) } },
        );
        at += img.cost;
      }
      const vectors = await this.decode(rows.map((r) => r.prompt), embeds, at);
      group.forEach((i, k) => (out[i] = vectors[k]!));
    }
    return out;
  }

  async encodeTexts(texts: string[]): Promise<EncodedText[]> {
    const prompts = await this.prompts.texts(texts);
    const out = new Array<EncodedText>(texts.length);
    for (const group of byTokenBudget(prompts.map((p) => p.ids.length), DECODER_TOKEN_BUDGET)) {
      const vectors = await this.decode(group.map((i) => prompts[i]!), new Float32Array(0), 0);
      group.forEach((i, k) => (out[i] = { vector: vectors[k]!, truncated: prompts[i]!.truncated }));
    }
    return out;
  }

  /** One decoder run over right-padded prompts; `embeds` holds the visual tokens of their pads, in row order. */
  private async decode(prompts: Prompt[], embeds: Float32Array, visualRows: number): Promise<Float32Array[]> {
    const { decoder, text } = this.manifest.gme;
    const b = prompts.length;
    const s = Math.max(...prompts.map((p) => p.ids.length));
    const ids = new BigInt64Array(b * s).fill(BigInt(text.padId));
    const mask = new BigInt64Array(b * s);
    prompts.forEach((p, r) => {
      for (let j = 0; j < p.ids.length; j++) {
        ids[r * s + j] = BigInt(p.ids[j]!);
        mask[r * s + j] = 1n;
      }
    });
    const feeds: Record<string, Tensor> = {
      [decoder.inputIds]: { type: 'int64', dims: [b, s], data: ids },
      [decoder.attentionMask]: { type: 'int64', dims: [b, s], data: mask },
      [decoder.imageEmbeds]: { type: 'float32', dims: [visualRows, this.hidden], data: embeds },
    };
    const result = await this.decoder.run(feeds, [decoder.output]);
    const data = result[decoder.output]!.data as Float32Array;
    // The graph L2-normalises already; normalising again costs nothing and guards a package that does not.
    return Array.from({ length: b }, (_, r) => l2normalize(data.slice(r * this.hidden, (r + 1) * this.hidden)));
  }

  close(): void {
    this.vision.dispose();
    this.decoder.dispose();
  }
}

export const gmeQwen2Vl: ModelFamily = {
  name: 'gme-qwen2-vl',
  async open(pkg: ModelPackage, options: FamilyOptions): Promise<FamilyModel> {
    const manifest = pkg.manifest as GmeManifest;
    const files = { vision: pkg.files['gme.vision.model']!, decoder: pkg.files['gme.decoder.model']! };
    return openSessions(files, options.engine, async ({ vision, decoder }) => {
      const problems = checkGme(manifest, vision, decoder);
      if (problems.length) throw invalidPackage(pkg.dir, problems);
      const prompts = await GmePrompts.load(pkg.files['gme.tokenizer']!, manifest.gme.text, 'gme');
      return new GmeQwen2Vl(manifest, vision, decoder, prompts, options.limits);
    });
  },
};
