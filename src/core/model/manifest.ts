/**
 * The model package manifest (`models/<name>/model.yaml`): a dual encoder, its preprocessing, its score
 * calibration and default bands. The zod schema here is the source of truth; `models/model.schema.json` is
 * generated from it (`npm run schema`) for editors, and a test keeps the two identical.
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const triple = z.tuple([z.number(), z.number(), z.number()]);

export const BandSchema = z.strictObject({
  name: z.string().min(1).regex(/^[A-Za-z0-9_-]+$/, 'band names are letters, digits, _ and - (they name folders)'),
  /** Inclusive lower bound; the last band may omit it (it catches everything below). */
  min: z.number().optional(),
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
  mean: triple.default([0, 0, 0]),
  std: triple.default([1, 1, 1]).refine((s) => s.every((v) => v !== 0), 'std must not contain 0'),
  scale: z.number().positive().default(1 / 255).describe('multiplier applied to 0–255 pixels before mean/std'),
  channelOrder: z.enum(['rgb', 'bgr']).default('rgb'),
  dtype: z.enum(['float32', 'float16']).default('float32'),
  background: z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)])
    .default([255, 255, 255]).describe('colour alpha is flattened onto, and pad colour'),
});

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

export const ManifestSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().min(1),
  version: z.union([z.string(), z.number()]).transform(String),
  description: z.string().default(''),
  embeddingSize: positiveInt,
  normalized: z.boolean().default(false).describe('true when both encoders already output L2-normalised embeddings'),
  image: ImageEncoderSchema,
  text: TextEncoderSchema,
  score: z
    .object({
      range: z.tuple([z.number(), z.number()]).refine(([lo, hi]) => hi > lo, 'range must be [lo, hi] with hi > lo')
        .describe('cosine mapped to 0 at lo and 1 at hi, clamped'),
    })
    .default({ range: [0.1, 0.5] }),
  bands: BandsSchema.default({
    on: 'cosine',
    list: [{ name: 'adopt', min: 0.4 }, { name: 'review', min: 0.3 }, { name: 'improve', min: 0.2 }, { name: 'reject' }],
  }),
});

export type Manifest = z.output<typeof ManifestSchema>;
export type Bands = z.output<typeof BandsSchema>;
export type ImageEncoderSpec = Manifest['image'];
export type TextEncoderSpec = Manifest['text'];

/** The JSON Schema published as models/model.schema.json. */
export function manifestJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ManifestSchema, { io: 'input' }),
    $id: 'https://matchd.local/schemas/model.schema.json',
    title: 'matchd model package manifest (model.yaml)',
  };
}
