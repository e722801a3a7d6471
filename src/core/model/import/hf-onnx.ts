/**
 * Hugging Face ONNX folders (what transformers.js and optimum publish, e.g. Xenova/clip-vit-base-patch32,
 * Xenova/siglip-base-patch16-224) → a matchd dual-encoder package. This file finds and checks everything
 * (`planHfImport`: every problem listed, nothing written); hf-write.ts writes the package.
 *
 * Layouts: `onnx/vision_model{suffix}.onnx` + `onnx/text_model{suffix}.onnx` (preferred), or only the combined
 * `onnx/model{suffix}.onnx` (also at the folder root, optimum's layout), whose two towers are cut out at import
 * (onnx-extract.ts says why). The suffix is the variant: '' (fp32), '_fp16', '_quantized'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { problemsError } from '../../problems.ts';
import { startingCalibration, type Calibration, type Logits } from './calibration.ts';
import {
  configImageSize, imageSettings, modelTypeOf, readHfJson, textSettings,
  type HfModelType, type ImageSettings, type TextSettings,
} from './hf-config.ts';
import { findLogits } from './logits.ts';
import { towerOf } from './onnx-extract.ts';
import { externalFiles, readOnnx, type OnnxFile, type OnnxValueInfo } from './onnx-file.ts';

export const VARIANTS = { fp32: '', fp16: '_fp16', quantized: '_quantized' } as const;
export type Variant = keyof typeof VARIANTS;

export interface HfImportOptions {
  variant?: Variant;
  /** The package name (default: config.json's _name_or_path, else the folder name). */
  name?: string;
  /** SigLIP calibration when the folder has no combined model to read it from. */
  logitScale?: number;
  logitBias?: number;
}

/** One tower as it will be written: where it comes from and which of its inputs / outputs matchd uses. */
export interface TowerPlan {
  /** The ONNX file it is (split) or is cut from (combined). */
  source: string;
  /** For a combined source: the output the tower is cut at. */
  cutAt?: string;
  /** The file name inside the package. */
  file: string;
  inputs: OnnxValueInfo[];
  output: OnnxValueInfo;
  /** External data files (absolute) the written file needs next to it. */
  externalData: string[];
}

export interface HfPlan {
  dir: string;
  modelType: HfModelType;
  variant: Variant;
  layout: 'split' | 'combined';
  image: TowerPlan;
  text: TowerPlan;
  imageSettings: ImageSettings;
  textSettings: TextSettings;
  embeddingSize: number;
  normalized: boolean;
  logits: Logits | null;
  calibration: Calibration;
  name: string;
  /** The ONNX files the folder has (relative), for messages and `inspect`. */
  available: string[];
}

/** True when `dir` looks like a transformers.js / optimum ONNX export: config.json and ONNX files. */
export function detectHfOnnx(dir: string): boolean {
  if (!fs.existsSync(path.join(dir, 'config.json'))) return false;
  return onnxFiles(dir).length > 0;
}

/** Relative paths of the .onnx files in `onnx/` and at the root. */
function onnxFiles(dir: string): string[] {
  const list = (sub: string) => {
    try {
      return fs.readdirSync(path.join(dir, sub)).filter((f) => f.endsWith('.onnx')).map((f) => (sub ? `${sub}/${f}` : f));
    } catch {
      return [];
    }
  };
  return [...list('onnx'), ...list('')].sort();
}

function find(dir: string, available: string[], base: string): string | null {
  const rel = [`onnx/${base}`, base].find((f) => available.includes(f));
  return rel ? path.join(dir, rel) : null;
}

function readGraph(file: string, problems: string[]): OnnxFile | null {
  try {
    const m = readOnnx(file);
    for (const ext of externalFiles(m)) {
      if (!fs.existsSync(path.resolve(path.dirname(file), ext))) problems.push(`${rel(file)}: its external data file ${ext} is missing`);
    }
    return m;
  } catch (err) {
    problems.push(`${rel(file)}: not a readable ONNX file (${(err as Error).message})`);
    return null;
  }
}

function rel(file: string): string {
  return path.join(path.basename(path.dirname(file)), path.basename(file));
}

function dims(v: OnnxValueInfo): string {
  return `[${v.shape.map((d) => d ?? '?').join(', ')}]`;
}

/** Preferred embedding outputs by layout and type; the first that exists wins. */
const OUTPUTS = {
  image: { clip: ['image_embeds'], siglip: ['pooler_output', 'image_embeds'] },
  text: { clip: ['text_embeds'], siglip: ['pooler_output', 'text_embeds'] },
} as const;

function pickOutput(kind: 'image' | 'text', type: HfModelType, outputs: OnnxValueInfo[], where: string, problems: string[]): OnnxValueInfo | null {
  const wanted: readonly string[] = OUTPUTS[kind][type];
  const out = wanted.map((n) => outputs.find((o) => o.name === n)).find((o) => o !== undefined);
  if (!out) {
    const hint = type === 'clip' ? ` (export CLIP${kind === 'image' ? 'Vision' : 'Text'}ModelWithProjection: the projected embedding)` : '';
    problems.push(`${where}: no ${wanted.join(' or ')} output (it has: ${outputs.map((o) => o.name).join(', ')})${hint}`);
    return null;
  }
  if (out.type !== 'float32' && out.type !== 'float16') problems.push(`${where}: output ${out.name} is ${out.type}, expected float32 or float16`);
  if (out.shape.length !== 2) problems.push(`${where}: output ${out.name} has shape ${dims(out)}, expected [batch, embedding]`);
  return out;
}

function checkImageInputs(inputs: OnnxValueInfo[], settings: ImageSettings | null, where: string, problems: string[]): void {
  const px = inputs.find((i) => i.name === 'pixel_values');
  if (!px) problems.push(`${where}: no pixel_values input (it has: ${inputs.map((i) => i.name).join(', ') || 'none'})`);
  else {
    if (px.type !== 'float32' && px.type !== 'float16') problems.push(`${where}: pixel_values is ${px.type}, expected float32 or float16`);
    if (px.shape.length !== 4) problems.push(`${where}: pixel_values has shape ${dims(px)}, expected [batch, 3, height, width]`);
    else {
      const [, c, h, w] = px.shape;
      if (typeof c === 'number' && c !== 3) problems.push(`${where}: pixel_values has ${c} channels, expected 3`);
      if (settings && ((typeof h === 'number' && h !== settings.height) || (typeof w === 'number' && w !== settings.width))) {
        problems.push(`${where}: pixel_values takes ${w}×${h} but preprocessor_config.json makes ${settings.width}×${settings.height}`);
      }
    }
  }
  for (const i of inputs) if (i.name !== 'pixel_values') problems.push(`${where}: input ${i.name} is not one matchd can feed (only pixel_values)`);
}

function checkTextInputs(inputs: OnnxValueInfo[], where: string, problems: string[]): void {
  const ids = inputs.find((i) => i.name === 'input_ids');
  if (!ids) problems.push(`${where}: no input_ids input (it has: ${inputs.map((i) => i.name).join(', ') || 'none'})`);
  for (const i of inputs) {
    if (i.name === 'input_ids' || i.name === 'attention_mask') {
      if (i.type !== 'int64' && i.type !== 'int32') problems.push(`${where}: ${i.name} is ${i.type}, expected int64 or int32`);
      if (ids && i.type !== ids.type) problems.push(`${where}: ${i.name} is ${i.type} but input_ids is ${ids.type}`);
    } else {
      problems.push(`${where}: input ${i.name} is not one matchd can feed (input_ids and attention_mask only)`);
    }
  }
}

/** Read and check everything an import needs; throws MATCHD_MODEL_INVALID listing every problem. */
export function planHfImport(dir: string, options: HfImportOptions = {}): HfPlan {
  const problems: string[] = [];
  const variant = options.variant ?? 'fp32';
  const suffix = VARIANTS[variant];
  const available = onnxFiles(dir);
  const json = readHfJson(dir, problems);
  const type = json ? modelTypeOf(json.config, problems) : null;
  const tokenizerFile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokenizerFile)) problems.push('tokenizer.json: missing');
  const image = json && type ? imageSettings(type, json.preprocessor, problems) : null;
  const text = json && type && fs.existsSync(tokenizerFile) ? textSettings(type, json, tokenizerFile, problems) : null;
  const configSize = json ? configImageSize(json.config) : null;
  if (image && configSize !== null && (image.width !== configSize || image.height !== configSize)) {
    problems.push(`config.json: vision_config.image_size is ${configSize} but preprocessor_config.json makes ${image.width}×${image.height}`);
  }

  // Which files: both split towers of the variant, else the combined model of the variant.
  const visionFile = find(dir, available, `vision_model${suffix}.onnx`);
  const textFile = find(dir, available, `text_model${suffix}.onnx`);
  const combinedFile = find(dir, available, `model${suffix}.onnx`);
  let layout: 'split' | 'combined' | null = null;
  if (visionFile && textFile) layout = 'split';
  else if (combinedFile) layout = 'combined';
  else {
    const have = available.length ? available.join(', ') : 'no .onnx files';
    const half = visionFile ? `onnx/vision_model${suffix}.onnx without onnx/text_model${suffix}.onnx` : textFile ? `onnx/text_model${suffix}.onnx without onnx/vision_model${suffix}.onnx` : null;
    problems.push(`onnx: no ${variant} model: need onnx/vision_model${suffix}.onnx and onnx/text_model${suffix}.onnx, or onnx/model${suffix}.onnx${half ? ` (found ${half})` : ''}; the folder has ${have}`);
  }

  let towers: { image: TowerPlan | null; text: TowerPlan | null } = { image: null, text: null };
  if (layout === 'split' && type) {
    const v = readGraph(visionFile!, problems);
    const t = readGraph(textFile!, problems);
    const at = (f: string) => path.dirname(f);
    if (v) {
      checkImageInputs(v.inputs, image, rel(visionFile!), problems);
      const out = pickOutput('image', type, v.outputs, rel(visionFile!), problems);
      if (out) towers.image = { source: visionFile!, file: path.basename(visionFile!), inputs: v.inputs, output: out, externalData: externalFiles(v).map((e) => path.resolve(at(visionFile!), e)) };
    }
    if (t) {
      checkTextInputs(t.inputs, rel(textFile!), problems);
      const out = pickOutput('text', type, t.outputs, rel(textFile!), problems);
      if (out) towers.text = { source: textFile!, file: path.basename(textFile!), inputs: t.inputs, output: out, externalData: externalFiles(t).map((e) => path.resolve(at(textFile!), e)) };
    }
  } else if (layout === 'combined' && type) {
    towers = cutPlan(combinedFile!, suffix, image, problems);
  }

  // The calibration: from a combined model of this variant (or any), else the options.
  let logits: Logits | null = null;
  if (type) {
    const candidates = [`model${suffix}.onnx`, 'model.onnx', ...available.map((a) => path.basename(a)).filter((a) => /^model(_\w+)?\.onnx$/.test(a))];
    for (const c of new Set(candidates)) {
      const f = find(dir, available, c);
      if (!f) continue;
      try {
        logits = findLogits(readOnnx(f));
      } catch {
        // unreadable: reported above when it is the file being imported; otherwise just not a source of logits
      }
      if (logits) break;
    }
  }
  if (options.logitScale !== undefined || options.logitBias !== undefined) {
    if (options.logitScale === undefined || options.logitBias === undefined) problems.push('--logit-scale and --logit-bias go together');
    else logits = { scale: options.logitScale, bias: options.logitBias, source: 'given on the command line' };
  }

  let embeddingSize = 0;
  if (towers.image && towers.text) {
    const a = towers.image.output.shape[1];
    const b = towers.text.output.shape[1];
    const fromConfig = json?.config.projection_dim ?? json?.config.vision_config?.hidden_size;
    embeddingSize = typeof a === 'number' ? a : typeof b === 'number' ? b : typeof fromConfig === 'number' ? fromConfig : 0;
    if (typeof a === 'number' && typeof b === 'number' && a !== b) problems.push(`the towers disagree: image embeddings have ${a} dims, text embeddings ${b}`);
    if (!embeddingSize) problems.push('embedding size unknown: neither output has a fixed last dimension and config.json has no projection_dim');
  }
  if (problems.length) {
    throw problemsError('MATCHD_MODEL_INVALID', `cannot import ${dir}`, problems, { dir });
  }
  const config = json!.config;
  const name = options.name ?? (typeof config._name_or_path === 'string' && config._name_or_path ? config._name_or_path : path.basename(path.resolve(dir)));
  return {
    dir, modelType: type!, variant, layout: layout!, image: towers.image!, text: towers.text!, imageSettings: image!, textSettings: text!,
    embeddingSize, normalized: layout === 'combined', logits, calibration: startingCalibration(type!, logits), name, available,
  };
}

/** The two towers of a combined model: cut at image_embeds / text_embeds, each checked to need only its own inputs. */
function cutPlan(file: string, suffix: string, image: ImageSettings | null, problems: string[]): { image: TowerPlan | null; text: TowerPlan | null } {
  const m = readGraph(file, problems);
  if (!m) return { image: null, text: null };
  const where = rel(file);
  const plan = (kind: 'image' | 'text', output: string, written: string): TowerPlan | null => {
    const out = m.outputs.find((o) => o.name === output);
    if (!out) {
      problems.push(`${where}: no ${output} output to cut the ${kind} tower at (it has: ${m.outputs.map((o) => o.name).join(', ')})`);
      return null;
    }
    let inputs: OnnxValueInfo[];
    try {
      const t = towerOf(m, output);
      inputs = m.inputs.filter((i) => t.inputs.includes(i.name));
    } catch (err) {
      problems.push(`${where}: cannot cut the ${kind} tower: ${(err as Error).message}`);
      return null;
    }
    if (kind === 'image') checkImageInputs(inputs, image, `${where} (image tower)`, problems);
    else checkTextInputs(inputs, `${where} (text tower)`, problems);
    return { source: file, cutAt: output, file: written, inputs, output: out, externalData: externalFiles(m).map((e) => path.resolve(path.dirname(file), e)) };
  };
  return { image: plan('image', 'image_embeds', `vision_model${suffix}.onnx`), text: plan('text', 'text_embeds', `text_model${suffix}.onnx`) };
}
