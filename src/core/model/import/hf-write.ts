/**
 * Write an import plan as a package: model.yaml, the two towers (hard-linked, copied, or cut from the combined
 * model) with their external data, tokenizer.json. Everything goes to a temporary folder next to `out`, the package
 * is opened and run once (one text, one image) with the real runtime, and only then renamed into place, so `out` is
 * either the old content or the whole new package, never half of one.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { stringify } from 'yaml';
import type { EngineOptions } from '../../engine.ts';
import { MatchdError } from '../../errors.ts';
import { limitsFrom } from '../../image/spec.ts';
import { openFamily } from '../families/index.ts';
import { readPackage } from '../package.ts';
import { planHfImport, type HfImportOptions, type HfPlan, type TowerPlan } from './hf-onnx.ts';
import { readOnnx } from './onnx-file.ts';
import { writeTower } from './onnx-extract.ts';

export interface WriteOptions extends HfImportOptions {
  /** Replace an existing `out` (atomically). */
  force?: boolean;
  engine?: EngineOptions;
}

const TYPE_LABEL = { clip: 'CLIP', siglip: 'SigLIP' } as const;

/** The model.yaml content for a plan. */
export function manifestOf(plan: HfPlan): Record<string, unknown> {
  const img = plan.imageSettings;
  const txt = plan.textSettings;
  const ids = plan.text.inputs.find((i) => i.name === 'input_ids')!;
  const mask = plan.text.inputs.find((i) => i.name === 'attention_mask');
  const px = plan.image.inputs.find((i) => i.name === 'pixel_values')!;
  const seq = ids.shape[1];
  const source = plan.layout === 'split' ? `${plan.image.file} + ${plan.text.file}` : `the two towers cut from ${path.basename(plan.image.source)}`;
  return {
    family: 'dual-encoder',
    name: plan.name,
    version: 1,
    description:
      `${TYPE_LABEL[plan.modelType]} (model_type ${plan.modelType}, ${plan.variant}) imported by \`matchd model import\` from ${source}. ` +
      `Calibration: ${plan.calibration.note}.`,
    embeddingSize: plan.embeddingSize,
    normalized: plan.normalized,
    image: {
      model: plan.image.file,
      input: 'pixel_values',
      output: plan.image.output.name,
      size: { width: img.width, height: img.height },
      resize: img.resize,
      ...(img.shortestEdge !== undefined ? { shortestEdge: img.shortestEdge } : {}),
      resample: img.resample,
      mean: img.mean,
      std: img.std,
      scale: img.scale,
      channelOrder: 'rgb',
      dtype: px.type,
    },
    text: {
      model: plan.text.file,
      tokenizer: 'tokenizer.json',
      inputIds: 'input_ids',
      ...(mask ? { attentionMask: 'attention_mask' } : {}),
      output: plan.text.output.name,
      maxLength: typeof seq === 'number' ? seq : txt.maxLength,
      // A fixed sequence length in the graph needs every batch padded to it.
      padding: typeof seq === 'number' ? 'max_length' : txt.padding,
      padId: txt.padId,
      dtype: ids.type,
    },
    score: plan.calibration.score,
    bands: plan.calibration.bands,
  };
}

function place(src: string, dest: string): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  try {
    fs.linkSync(src, dest);
  } catch {
    fs.copyFileSync(src, dest, fs.constants.COPYFILE_FICLONE);
  }
}

function writeTowerFiles(t: TowerPlan, dir: string): void {
  if (t.cutAt) writeTower(readOnnx(t.source), t.cutAt, path.join(dir, t.file));
  else place(t.source, path.join(dir, t.file));
  // External data paths are relative to the model file, so they keep their place next to it.
  for (const ext of t.externalData) {
    const dest = path.join(dir, path.relative(path.dirname(t.source), ext));
    if (!fs.existsSync(dest)) place(ext, dest);
  }
}

function header(plan: HfPlan): string {
  const l = plan.logits;
  return [
    `# Written by \`matchd model import\` from ${path.resolve(plan.dir)} (${plan.modelType}, ${plan.variant}, ${plan.layout} layout).`,
    `# Preprocessing from preprocessor_config.json, text settings from tokenizer_config.json / config.json.`,
    l ? `# logit_scale: exp = ${l.scale}${l.bias !== null ? `, logit_bias: ${l.bias}` : ''} (${l.source})` : '# No logit_scale / logit_bias found.',
    '',
  ].join('\n');
}

/** Open the written package with the real runtime and encode one text and one image. */
async function smokeTest(dir: string, engine: EngineOptions | undefined): Promise<void> {
  const model = await openFamily(readPackage(dir), { engine, limits: limitsFrom(undefined) });
  try {
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 120, g: 90, b: 60 } } }).png().toBuffer();
    const [image] = await model.encodeImages([await model.prepareImage(png)]);
    const [text] = await model.encodeTexts(['a photo of a dog']);
    for (const [what, v] of [['image', image!], ['text', text!.vector]] as const) {
      if (!v.every(Number.isFinite)) throw new MatchdError('MATCHD_MODEL_INVALID', `the imported ${what} tower produces non-finite embeddings`);
    }
  } finally {
    model.close();
  }
}

/** Import `dir` into a new package at `out`. Returns the plan it followed. */
export async function importHfOnnx(dir: string, out: string, options: WriteOptions = {}): Promise<HfPlan> {
  const plan = planHfImport(dir, options);
  const target = path.resolve(out);
  if (fs.existsSync(target)) {
    if (!options.force) throw new MatchdError('MATCHD_BAD_OPTION', `--out ${out} already exists (use --force to replace it)`, { out });
    if (!fs.statSync(target).isDirectory()) throw new MatchdError('MATCHD_BAD_OPTION', `--out ${out} exists and is not a folder`, { out });
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = fs.mkdtempSync(path.join(path.dirname(target), `.${path.basename(target)}.importing-`));
  try {
    writeTowerFiles(plan.image, tmp);
    writeTowerFiles(plan.text, tmp);
    place(path.join(dir, 'tokenizer.json'), path.join(tmp, 'tokenizer.json'));
    fs.writeFileSync(path.join(tmp, 'model.yaml'), header(plan) + stringify(manifestOf(plan), { lineWidth: 0 }));
    await smokeTest(tmp, options.engine);
    if (fs.existsSync(target)) {
      const old = `${tmp}.old`;
      fs.renameSync(target, old);
      try {
        fs.renameSync(tmp, target);
      } catch (err) {
        fs.renameSync(old, target);
        throw err;
      }
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, target);
    }
    return plan;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
