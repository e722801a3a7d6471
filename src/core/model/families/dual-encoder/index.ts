/**
 * The dual-encoder family (CLIP, SigLIP, the demo): an image tower of fixed input size and a text tower. Images are
 * decoded and resized by sharp to exactly the tower's size, packed natively into one NCHW batch tensor, encoded in
 * one run; texts are tokenised as queries and encoded in one run.
 */
import { InferenceSession } from '../../../engine.ts';
import { KERNEL_OF_RESAMPLE, decodeImage, imageSpecFrom, type DecodeLimits, type ImageInput, type ImageSpec, type LoadedImage } from '../../../image.ts';
import { addon, type Tensor } from '../../../native.ts';
import type { DualEncoderManifest } from '../../manifest.ts';
import { invalidPackage, type ModelPackage } from '../../package.ts';
import { TextTokenizer, buildQuery } from '../../tokenizer.ts';
import type { EncodedText, FamilyModel, FamilyOptions, ModelFamily, PreparedImage } from '../family.ts';
import { unitRows } from '../rows.ts';
import { openSessions } from '../sessions.ts';
import { checkDualEncoder } from './check.ts';

interface DualImage extends PreparedImage {
  pixels: LoadedImage;
}

class DualEncoder implements FamilyModel<DualImage> {
  readonly maxBatchCost = Infinity;
  private readonly spec: Required<ImageSpec>;

  constructor(
    readonly manifest: DualEncoderManifest,
    private readonly image: InferenceSession,
    private readonly text: InferenceSession,
    private readonly tokenizer: TextTokenizer,
    private readonly limits: DecodeLimits,
  ) {
    const m = manifest.image;
    this.spec = imageSpecFrom({
      width: m.size.width, height: m.size.height, resize: m.resize, background: m.background,
      kernel: KERNEL_OF_RESAMPLE[m.resample], shortestEdge: m.shortestEdge ?? null,
    });
  }

  get provider(): string {
    return this.image.provider ?? 'disposed';
  }

  async prepareImage(input: ImageInput): Promise<DualImage> {
    const pixels = await decodeImage(input, this.spec, this.limits);
    return { pixels, source: pixels.source, cost: 1 };
  }

  async encodeImages(images: DualImage[]): Promise<Float32Array[]> {
    const spec = this.manifest.image;
    const { width, height } = spec.size;
    const n = images.length;
    const size = n * 3 * width * height;
    const batch = spec.dtype === 'float16' ? new Uint16Array(size) : new Float32Array(size);
    await addon().packImages(images.map((i) => i.pixels), batch, { width, height, mean: spec.mean, std: spec.std, scale: spec.scale, channelOrder: spec.channelOrder });
    const input = { type: spec.dtype, dims: [n, 3, height, width], data: batch } as Tensor;
    const result = await this.image.run({ [spec.input]: input }, [spec.output]);
    return unitRows(result[spec.output]!, n);
  }

  async encodeTexts(texts: string[]): Promise<EncodedText[]> {
    const spec = this.manifest.text;
    const batch = await this.tokenizer.encode(texts.map((t) => buildQuery(t, spec)));
    const feeds: Record<string, Tensor> = { [spec.inputIds]: { type: spec.dtype, dims: batch.dims, data: batch.ids } };
    if (spec.attentionMask) feeds[spec.attentionMask] = { type: spec.dtype, dims: batch.dims, data: batch.mask };
    const result = await this.text.run(feeds, [spec.output]);
    return unitRows(result[spec.output]!, texts.length).map((vector, i) => ({ vector, truncated: batch.truncated[i]! }));
  }

  close(): void {
    this.image.dispose();
    this.text.dispose();
  }
}

export const dualEncoder: ModelFamily = {
  name: 'dual-encoder',
  async open(pkg: ModelPackage, options: FamilyOptions): Promise<FamilyModel> {
    const manifest = pkg.manifest as DualEncoderManifest;
    return openSessions({ image: pkg.files['image.model']!, text: pkg.files['text.model']! }, options.engine, ({ image, text }) => {
      const problems = checkDualEncoder(manifest, image, text);
      if (problems.length) throw invalidPackage(pkg.dir, problems);
      const tokenizer = TextTokenizer.load(pkg.files['text.tokenizer']!, manifest.text);
      return new DualEncoder(manifest, image, text, tokenizer, options.limits);
    });
  },
};
