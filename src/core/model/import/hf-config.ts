/**
 * What a Hugging Face model folder's JSON files say, as matchd manifest settings: config.json (model_type, the
 * towers' sizes), preprocessor_config.json (resize, crop, resample, rescale, normalise), tokenizer_config.json (pad
 * token, maximum length). Each reader adds every problem it finds to a list instead of stopping at the first.
 *
 * Defaults for keys a file leaves out are those of the Python processors (transformers' CLIPImageProcessor,
 * SiglipImageProcessor), the implementation the checkpoints were published with.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from 'tokenizers';

/**
 * chinese_clip is not among them: its text tower is BERT, whose exports take token_type_ids, an input the
 * dual-encoder family does not feed (it would need a manifest field and a zero tensor in the family's encodeTexts).
 */
export const SUPPORTED_TYPES = ['clip', 'siglip'] as const;
export type HfModelType = (typeof SUPPORTED_TYPES)[number];

type Json = Record<string, any>;

export interface HfJson {
  config: Json;
  preprocessor: Json;
  tokenizerConfig: Json | null;
}

export interface ImageSettings {
  width: number;
  height: number;
  resize: 'shortest-edge-crop' | 'squash';
  shortestEdge?: number;
  resample: 'bicubic' | 'bilinear' | 'nearest' | 'lanczos';
  mean: [number, number, number];
  std: [number, number, number];
  scale: number;
}

export interface TextSettings {
  maxLength: number;
  padding: 'longest' | 'max_length';
  padId: number;
  padToken: string;
}

const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
const HALF: [number, number, number] = [0.5, 0.5, 0.5];
/** PIL's filter numbers (preprocessor_config `resample`). 4 (box) and 5 (hamming) have no sharp kernel. */
const RESAMPLE: Record<number, ImageSettings['resample']> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

function readJson(file: string, problems: string[], required: boolean): Json | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (required || (err as NodeJS.ErrnoException).code !== 'ENOENT') {
      problems.push(`${path.basename(file)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (err as Error).message}`);
    }
    return null;
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Json;
    problems.push(`${path.basename(file)}: not a JSON object`);
  } catch (err) {
    problems.push(`${path.basename(file)}: invalid JSON (${(err as Error).message})`);
  }
  return null;
}

/** Read the three JSON files (tokenizer_config.json is optional); null when a required one is unusable. */
export function readHfJson(dir: string, problems: string[]): HfJson | null {
  const config = readJson(path.join(dir, 'config.json'), problems, true);
  const preprocessor = readJson(path.join(dir, 'preprocessor_config.json'), problems, true);
  const tokenizerConfig = readJson(path.join(dir, 'tokenizer_config.json'), problems, false);
  return config && preprocessor ? { config, preprocessor, tokenizerConfig } : null;
}

/** config.json's model_type, checked against what this importer knows. */
export function modelTypeOf(config: Json, problems: string[]): HfModelType | null {
  const t = config.model_type;
  if ((SUPPORTED_TYPES as readonly string[]).includes(t)) return t as HfModelType;
  problems.push(`config.json: model_type ${JSON.stringify(t)} is not one this importer knows (known: ${SUPPORTED_TYPES.join(', ')})`);
  return null;
}

function triple(v: unknown, fallback: [number, number, number], what: string, problems: string[]): [number, number, number] {
  if (v === undefined || v === null) return fallback;
  const arr = typeof v === 'number' ? [v, v, v] : v;
  if (Array.isArray(arr) && arr.length === 3 && arr.every((x) => typeof x === 'number' && Number.isFinite(x))) return [arr[0], arr[1], arr[2]];
  problems.push(`preprocessor_config.json: ${what} must be 3 numbers, got ${JSON.stringify(v)}`);
  return fallback;
}

function posInt(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null;
}

/** A `size` / `crop_size` value: an int, {shortest_edge}, or {height, width}. */
function sizeOf(v: unknown): { shortest?: number; height?: number; width?: number } | null {
  if (posInt(v) !== null) return { shortest: v as number };
  if (!v || typeof v !== 'object') return null;
  const o = v as Json;
  if (posInt(o.shortest_edge) !== null) return { shortest: o.shortest_edge };
  if (posInt(o.height) !== null && posInt(o.width) !== null) return { height: o.height, width: o.width };
  return null;
}

/** Image preprocessing from preprocessor_config.json. */
export function imageSettings(type: HfModelType, pre: Json, problems: string[]): ImageSettings | null {
  const where = 'preprocessor_config.json';
  const before = problems.length;
  const resampleCode = pre.resample ?? (type === 'siglip' ? 2 : 3);
  const resample = RESAMPLE[resampleCode as number];
  if (!resample) problems.push(`${where}: resample ${JSON.stringify(resampleCode)} is not supported (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic)`);
  if (pre.do_resize === false) problems.push(`${where}: do_resize false is not supported (the image tower takes one fixed size)`);
  const size = sizeOf(pre.size ?? pre.image_size);
  const doCrop = pre.do_center_crop ?? type !== 'siglip';
  const crop = doCrop ? sizeOf(pre.crop_size ?? pre.size) : null;
  let settings: Pick<ImageSettings, 'width' | 'height' | 'resize' | 'shortestEdge'> | null = null;
  if (!size) problems.push(`${where}: size ${JSON.stringify(pre.size)} is neither an int, {shortest_edge} nor {height, width}`);
  else {
    // An int size means the shortest edge for CLIP's processors, a square for SigLIP's.
    const square = size.shortest !== undefined && type === 'siglip' ? { height: size.shortest, width: size.shortest } : null;
    const fixed = square ?? (size.height !== undefined ? { height: size.height, width: size.width! } : null);
    if (fixed) {
      if (crop && !(crop.height === fixed.height && crop.width === fixed.width) && !(crop.shortest === fixed.height && crop.shortest === fixed.width)) {
        problems.push(`${where}: resizing to ${fixed.width}×${fixed.height} then cropping to ${JSON.stringify(pre.crop_size)} is not supported`);
      }
      settings = { width: fixed.width, height: fixed.height, resize: 'squash' };
    } else if (!crop) {
      problems.push(`${where}: a shortest_edge resize without do_center_crop gives images of varying size; the tower needs one size`);
    } else {
      const c = crop.shortest !== undefined ? { height: crop.shortest, width: crop.shortest } : { height: crop.height!, width: crop.width! };
      if (size.shortest! < Math.max(c.width, c.height)) {
        problems.push(`${where}: shortest_edge ${size.shortest} is smaller than crop_size ${c.width}×${c.height} (padding is not supported)`);
      }
      settings = { ...c, resize: 'shortest-edge-crop', shortestEdge: size.shortest! };
    }
  }
  const doNormalize = pre.do_normalize ?? true;
  const defMean = type === 'siglip' ? HALF : CLIP_MEAN;
  const defStd = type === 'siglip' ? HALF : CLIP_STD;
  const mean = doNormalize ? triple(pre.image_mean, defMean, 'image_mean', problems) : ([0, 0, 0] as [number, number, number]);
  const std = doNormalize ? triple(pre.image_std, defStd, 'image_std', problems) : ([1, 1, 1] as [number, number, number]);
  if (std.some((s) => s === 0)) problems.push(`${where}: image_std contains 0`);
  const factor = pre.rescale_factor ?? 1 / 255;
  if (typeof factor !== 'number' || !(factor > 0)) problems.push(`${where}: rescale_factor must be a positive number, got ${JSON.stringify(factor)}`);
  const scale = pre.do_rescale === false ? 1 : factor;
  if (problems.length > before || !settings || !resample) return null;
  return { ...settings, resample, mean, std, scale };
}

function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content;
  return null;
}

/**
 * Text settings from tokenizer_config.json, tokenizer.json and config.json, checking that the tokenizer loads with
 * the same library the runtime uses. Returns null (with problems) when it cannot be used.
 */
export function textSettings(type: HfModelType, json: HfJson, tokenizerFile: string, problems: string[]): TextSettings | null {
  let tok: Tokenizer;
  try {
    tok = Tokenizer.fromFile(tokenizerFile);
  } catch (err) {
    problems.push(`tokenizer.json: does not load (${(err as Error).message.split('\n')[0]})`);
    return null;
  }
  const tc = json.tokenizerConfig ?? {};
  const textConfig = (json.config.text_config ?? {}) as Json;
  const positions = posInt(textConfig.max_position_embeddings) ?? (type === 'siglip' ? 64 : 77);
  // model_max_length is a huge sentinel when the tokenizer has no limit of its own; the position table has one.
  const declared = posInt(tc.model_max_length);
  const maxLength = declared !== null && declared < 1e6 ? Math.min(declared, positions) : positions;
  const padToken = tokenText(tc.pad_token);
  let padId: number | null = null;
  if (padToken !== null) {
    padId = tok.tokenToId(padToken);
    if (padId === null) problems.push(`tokenizer_config.json: pad_token ${JSON.stringify(padToken)} is not in tokenizer.json's vocabulary`);
  } else {
    padId = posInt(textConfig.pad_token_id) ?? (textConfig.pad_token_id === 0 ? 0 : null);
    if (padId === null) problems.push('no pad token: tokenizer_config.json has no pad_token and config.json no text_config.pad_token_id');
  }
  if (padId === null) return null;
  // SigLIP was trained on texts padded to the full length, with no attention mask: padding is part of the input.
  return { maxLength, padding: type === 'siglip' ? 'max_length' : 'longest', padId, padToken: padToken ?? tok.idToToken(padId) ?? String(padId) };
}

/** The size config.json gives the vision tower (to check against the processor and the graph). */
export function configImageSize(config: Json): number | null {
  return posInt((config.vision_config ?? {}).image_size);
}
