/**
 * The model package manifest (`models/<name>/model.yaml`): the model family (`dual-encoder`, the default, or
 * `gme-qwen2-vl`), its preprocessing, its score calibration and default bands. The zod schema here is the source of
 * truth; `models/model.schema.json` is generated from it (`npm run schema`) for editors, and a test keeps the two
 * identical.
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const triple = z.tuple([z.number(), z.number(), z.number()]);

export const BandSchema = z.strictObject({
  name: z.string().min(1).regex(/^[A-Za-z0-9_-]+$/, 'band names are letters, digits, _ and - (they name folders)'),
  /** Inclusive lower bound; the last band may omit it (it catches everything below). */
  min: z.number().optional(),
  /** Jobs in this band wait for a person on the review page (without any band saying so, the band named `review` does). */
  review: z.boolean().optional().describe("jobs in this band wait on the web page's review queue (default: only a band named review)"),
});

/** Verdict bands, best first, with strictly decreasing thresholds. */
export const BandsSchema = z
  .object({
    on: z.enum(['cosine', 'score']).default('cosine').describe('what the thresholds compare: the raw cosine or the 0–1 score'),
    list: z.array(BandSchema).min(1),
  })
  .superRefine((bands, ctx) => {
    const names = new Set<string>();
    bands.list.forEach((b, i) => {
      if (names.has(b.name)) ctx.addIssue({ code: 'custom', path: ['list', i, 'name'], message: `duplicate band name '${b.name}'` });
      names.add(b.name);
      const last = i === bands.list.length - 1;
      if (!last && b.min === undefined) ctx.addIssue({ code: 'custom', path: ['list', i, 'min'], message: 'only the last band may omit min' });
      const prev = bands.list[i - 1];
      if (i > 0 && b.min !== undefined && prev?.min !== undefined && b.min >= prev.min) {
        ctx.addIssue({ code: 'custom', path: ['list', i, 'min'], message: `thresholds must decrease: ${b.min} is not below ${prev.min}` });
      }
    });
  });

export const ImageEncoderSchema = z.strictObject({
  model: z.string().min(1).describe('ONNX file, relative to the package folder'),
  input: z.string().min(1).describe('name of the pixel input (NCHW)'),
  output: z.string().min(1).describe('name of the embedding output [batch, embeddingSize]'),
  size: z.strictObject({ width: positiveInt, height: positiveInt }),
  resize: z.enum(['shortest-edge-crop', 'squash', 'pad']).default('shortest-edge-crop'),
  shortestEdge: positiveInt.optional()
    .describe('shortest-edge-crop: the shorter side is resized to this before the centre crop (default: just covers size)'),
  resample: z.enum(['bicubic', 'bilinear', 'nearest', 'lanczos']).default('bicubic')
    .describe("the resampling filter (Hugging Face's preprocessor_config resample 3, 2, 0, 1)"),
  mean: triple.default([0, 0, 0]),
  std: triple.default([1, 1, 1]).refine((s) => s.every((v) => v !== 0), 'std must not contain 0'),
  scale: z.number().positive().default(1 / 255).describe('multiplier applied to 0–255 pixels before mean/std'),
  channelOrder: z.enum(['rgb', 'bgr']).default('rgb'),
  dtype: z.enum(['float32', 'float16']).default('float32'),
  background: z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)])
    .default([255, 255, 255]).describe('colour alpha is flattened onto, and pad colour'),
}).superRefine((m, ctx) => {
  if (m.shortestEdge === undefined) return;
  if (m.resize !== 'shortest-edge-crop') ctx.addIssue({ code: 'custom', path: ['shortestEdge'], message: 'shortestEdge applies to resize shortest-edge-crop only' });
  else if (m.shortestEdge < Math.max(m.size.width, m.size.height)) {
    ctx.addIssue({ code: 'custom', path: ['shortestEdge'], message: `shortestEdge must be at least the larger side of size (${Math.max(m.size.width, m.size.height)})` });
  }
});

const rangeSchema = z.tuple([z.number(), z.number()]).refine(([lo, hi]) => hi > lo, 'range must be [lo, hi] with hi > lo');

/**
 * Cosine → 0–1 score. `linear` (the default): 0 at range[0], 1 at range[1], clamped. `sigmoid`: SigLIP's trained
 * calibration, sigmoid(logitScale · cosine + logitBias), with the checkpoint's exp(logit_scale) and logit_bias.
 */
export const ScoreSchema = z
  .strictObject({
    mapping: z.enum(['linear', 'sigmoid']).default('linear'),
    range: rangeSchema.optional().describe('linear: cosine mapped to 0 at lo and 1 at hi, clamped (default [0.1, 0.5])'),
    logitScale: z.number().positive().optional().describe("sigmoid: multiplies the cosine (exp of the checkpoint's logit_scale)"),
    logitBias: z.number().optional().describe("sigmoid: added after scaling (the checkpoint's logit_bias)"),
    calibrated: z.boolean().optional()
      .describe('false: the mapping and bands are starting points, not yet checked on labelled images (set by `matchd model import`)'),
  })
  .superRefine((s, ctx) => {
    if (s.mapping === 'sigmoid') {
      if (s.range !== undefined) ctx.addIssue({ code: 'custom', path: ['range'], message: 'range applies to mapping linear, not sigmoid' });
      for (const k of ['logitScale', 'logitBias'] as const) {
        if (s[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: `mapping sigmoid needs ${k}` });
      }
    } else {
      for (const k of ['logitScale', 'logitBias'] as const) {
        if (s[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `${k} applies to mapping sigmoid, not linear` });
      }
    }
  })
  .transform((s): ScoreSpec => {
    const calibrated = s.calibrated === undefined ? {} : { calibrated: s.calibrated };
    return s.mapping === 'sigmoid'
      ? { mapping: 'sigmoid', logitScale: s.logitScale!, logitBias: s.logitBias!, ...calibrated }
      : { mapping: 'linear', range: s.range ?? [0.1, 0.5], ...calibrated };
  });

/** How a cosine becomes a score (what scoring needs). */
export type ScoreMapping = { mapping: 'linear'; range: [number, number] } | { mapping: 'sigmoid'; logitScale: number; logitBias: number };
/** The manifest's `score` section. */
export type ScoreSpec = ScoreMapping & { calibrated?: boolean };

export const TextEncoderSchema = z.strictObject({
  model: z.string().min(1),
  tokenizer: z.string().min(1).describe('tokenizer.json (Hugging Face tokenizers format)'),
  inputIds: z.string().min(1).default('input_ids'),
  attentionMask: z.string().min(1).optional().describe('name of the attention-mask input, if the model takes one'),
  output: z.string().min(1),
  maxLength: positiveInt.describe('tokens per text, special tokens included; longer texts are truncated and flagged'),
  padding: z.enum(['longest', 'max_length']).default('longest'),
  padId: z.number().int().min(0).default(0),
  dtype: z.enum(['int64', 'int32']).default('int64'),
  query: z
    .object({
      instruction: z.string().default('').describe("e.g. GME's 'Find an image that matches the given text.'"),
      template: z.string().includes('{text}').default('{text}').describe('how a query is built; placeholders {instruction} and {text}'),
    })
    .default({ instruction: '', template: '{text}' }),
});

/** Settings every family shares: identity, embedding size, calibration and default bands. */
const common = {
  $schema: z.string().optional(),
  name: z.string().min(1),
  version: z.union([z.string(), z.number()]).transform(String),
  description: z.string().default(''),
  embeddingSize: positiveInt,
  normalized: z.boolean().default(false).describe('true when the encoders already output L2-normalised embeddings'),
  score: ScoreSchema.prefault({}),
  bands: BandsSchema.default({
    on: 'cosine',
    list: [{ name: 'adopt', min: 0.4 }, { name: 'review', min: 0.3 }, { name: 'improve', min: 0.2 }, { name: 'reject' }],
  }),
};

/** Two towers of fixed input size (CLIP, SigLIP, the demo): today's packages, and the default family. */
export const DualEncoderManifestSchema = z.strictObject({
  family: z.literal('dual-encoder').default('dual-encoder').describe('dual-encoder (the default) or gme-qwen2-vl'),
  ...common,
  image: ImageEncoderSchema,
  text: TextEncoderSchema,
});

/** GME-Qwen2-VL: a vision tower per image and one decoder for image and text prompts (see `gme:`). */
export const GmeSpecSchema = z.strictObject({
  vision: z.strictObject({
    model: z.string().min(1),
    pixelValues: z.string().min(1).default('pixel_values').describe('float32 [B, patches, 1176]'),
    positionIds: z.string().min(1).default('position_ids').describe('int64 [patches, 2]: (row, col) in 2×2-merge order'),
    output: z.string().min(1).default('image_embeds').describe('float32 [B, patches/4, hidden]'),
  }),
  decoder: z.strictObject({
    model: z.string().min(1),
    inputIds: z.string().min(1).default('input_ids'),
    attentionMask: z.string().min(1).default('attention_mask'),
    imageEmbeds: z.string().min(1).default('image_embeds').describe('float32 [M, hidden]: every image_pad row, in order'),
    output: z.string().min(1).default('embeddings').describe('float32 [B, hidden], L2-normalised'),
  }),
  tokenizer: z.string().min(1).describe('tokenizer.json (Hugging Face tokenizers format)'),
  weights: z.enum(['float32', 'float16', 'int8']).default('float32').describe('how the weights are stored (graph IO is float32 either way; int8: `matchd model quantize`)'),
  image: z.strictObject({
    patchSize: positiveInt.default(14),
    temporalPatchSize: positiveInt.default(2),
    mergeSize: positiveInt.default(2),
    mean: triple.default([0.48145466, 0.4578275, 0.40821073]),
    std: triple.default([0.26862954, 0.26130258, 0.27577711]).refine((s) => s.every((v) => v !== 0), 'std must not contain 0'),
    minPixels: positiveInt.default(256 * 784).describe('the image processor: fewest pixels after resizing'),
    maxPixels: positiveInt.default(1280 * 784).describe('the image processor: most pixels after resizing'),
    fetchMinPixels: positiveInt.default(4 * 784).describe("gme's fetch_image: fewest pixels of the first resize"),
    fetchMaxPixels: positiveInt.default(16384 * 784).describe("gme's fetch_image: most pixels of the first resize"),
    maxAspectRatio: z.number().positive().default(200),
    exifOrientation: z.boolean().default(true).describe('apply EXIF orientation (the reference does not: false = reference-exact)'),
  }).prefault({}),
  text: z.strictObject({
    maxLength: positiveInt.default(1800).describe('tokens per prompt; longer prompts are cut on the right and flagged'),
    padId: z.number().int().min(0).default(151643),
    imagePadId: z.number().int().min(0).default(151655),
    template: z.string().includes('{text}').includes('{vision}')
      .default('<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{vision}{text}<|im_end|>\n<|im_start|>assistant\n<|endoftext|>'),
    vision: z.string().default('<|vision_start|><|image_pad|><|vision_end|>').describe('what {vision} becomes for an image'),
    imagePad: z.string().default('<|image_pad|>').describe('the token expanded to one copy per merged visual token'),
    queryInstruction: z.string().default('Find an image that matches the given text.'),
    documentInstruction: z.string().default('You are a helpful assistant.'),
  }).prefault({}),
});

export const GmeManifestSchema = z.strictObject({
  family: z.literal('gme-qwen2-vl'),
  ...common,
  gme: GmeSpecSchema,
});

export const ManifestSchema = z.discriminatedUnion('family', [DualEncoderManifestSchema, GmeManifestSchema]);

export type Manifest = z.output<typeof ManifestSchema>;
export type DualEncoderManifest = z.output<typeof DualEncoderManifestSchema>;
export type GmeManifest = z.output<typeof GmeManifestSchema>;
export type GmeSpec = GmeManifest['gme'];
export type Bands = z.output<typeof BandsSchema>;
export type TextEncoderSpec = DualEncoderManifest['text'];

/** The JSON Schema published as models/model.schema.json. */
export function manifestJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ManifestSchema, { io: 'input' }),
    $id: 'https://matchd.local/schemas/model.schema.json',
    title: 'matchd model package manifest (model.yaml)',
  };
}
