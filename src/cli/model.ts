/**
 * `matchd model import DIR --out PACKAGE_DIR [...]` and `matchd model inspect PACKAGE|DIR` (`matchd model quantize`
 * lives in model-quantize.ts).
 *
 * Each importer is one row of IMPORTERS: a detector for the folders it understands, the import itself and a plan
 * reader for `inspect`. The first row whose detector accepts the folder handles it:
 *   - a Qwen2-VL checkpoint (GME-Qwen2-VL-2B/7B-Instruct, safetensors) → tools/gme/export.py (Python: numpy + onnx);
 *   - a Hugging Face ONNX export of CLIP / SigLIP / Chinese-CLIP (transformers.js, optimum) → written in TypeScript.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MatchdError } from '../core/errors.ts';
import { detectHfOnnx, planHfImport, VARIANTS, type HfImportOptions, type Variant } from '../core/model/import/hf-onnx.ts';
import { importHfOnnx } from '../core/model/import/hf-write.ts';
import { UsageError, packageRoot } from './args.ts';
import { describeHfPlan, describePackage } from './model-inspect.ts';
import { quantizeCommand, quantizeUsage } from './model-quantize.ts';
import { findPython, runPythonTool } from './python.ts';

export const modelUsage = `matchd model import DIR --out PACKAGE_DIR [--force] [options]
  make a model package from a downloaded model folder:
  - a GME-Qwen2-VL checkpoint (Qwen2VLForConditionalGeneration, safetensors):
      --dtype float32|float16   package weights (default float32; float16 halves the size, for GPUs)
      needs Python 3 with numpy and onnx (Debian/Ubuntu: apt-get install python3-numpy python3-onnx);
      MATCHD_PYTHON picks the interpreter
  - a Hugging Face ONNX export of CLIP or SigLIP (transformers.js / optimum layout):
      --variant fp32|fp16|quantized  [--name NAME]  [--logit-scale X --logit-bias=B]  (B is usually negative: use =)
matchd model inspect PACKAGE|DIR [--variant V] [--json]
  what a package holds, or what an import of DIR would make
${quantizeUsage}`;

export interface ImportOptions extends HfImportOptions {
  dtype?: 'float32' | 'float16';
  force?: boolean;
}

interface Importer {
  name: string;
  /** What it recognises, for the message when nothing does. */
  supports: string;
  /** Options only this importer takes. */
  options: (keyof ImportOptions)[];
  /** The folders this importer understands (cheap: file names and config.json only). */
  detect(dir: string): boolean;
  /** Import; resolves with the summary to print. */
  import(dir: string, out: string, options: ImportOptions): Promise<string>;
  /** What an import would make, as lines (inspect); throws MATCHD_MODEL_INVALID listing every problem. */
  describe(dir: string, options: ImportOptions): { lines: string[]; json: unknown };
}

/** config.json of a folder, or undefined when there is none or it is not a JSON object. */
function hfConfig(dir: string): Record<string, unknown> | undefined {
  try {
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    return c && typeof c === 'object' && !Array.isArray(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

const QWEN2_VL = 'Qwen2VLForConditionalGeneration';

const IMPORTERS: Importer[] = [
  {
    name: 'GME-Qwen2-VL checkpoint',
    supports: QWEN2_VL,
    options: ['dtype'],
    detect(dir) {
      const c = hfConfig(dir);
      return !!c && ((Array.isArray(c.architectures) && c.architectures.includes(QWEN2_VL)) || c.model_type === 'qwen2_vl');
    },
    async import(dir, out, { dtype = 'float32', force }) {
      const python = findPython(['numpy', 'onnx'], 'apt-get install python3-numpy python3-onnx');
      const script = path.join(packageRoot, 'tools', 'gme', 'export.py');
      process.stderr.write(`matchd: importing ${dir} (GME-Qwen2-VL checkpoint) into ${out} as ${dtype}\n`);
      const started = Date.now();
      await runPythonTool(python, script, [dir, '--out', out, '--dtype', dtype, ...(force ? ['--force'] : [])], dir, 'matchd: import: ');
      return `${out}: model package written in ${((Date.now() - started) / 1000).toFixed(1)} s; point model.dir (or --model) at it`;
    },
    describe(dir) {
      const c = hfConfig(dir)!;
      const text = { ...c, ...((c.text_config as object) ?? {}) } as Record<string, unknown>;
      const vision = (c.vision_config ?? {}) as Record<string, unknown>;
      const lines = [
        `${dir}: a Qwen2-VL checkpoint (GME): imported by tools/gme/export.py into family gme-qwen2-vl`,
        `  decoder: hidden ${text.hidden_size}, ${text.num_hidden_layers} layers, ${text.num_attention_heads} heads / ${text.num_key_value_heads} KV heads, vocab ${text.vocab_size}`,
        `  vision: depth ${vision.depth}, width ${vision.embed_dim}, ${vision.num_heads} heads, patch ${vision.patch_size ?? 14}`,
        '  (the import checks every tensor and lists every problem)',
      ];
      return { lines, json: { importer: 'gme-qwen2-vl', config: c } };
    },
  },
  {
    name: 'Hugging Face ONNX export (CLIP, SigLIP)',
    supports: 'CLIP / SigLIP / Chinese-CLIP ONNX exports (config.json with onnx/*.onnx)',
    options: ['variant', 'name', 'logitScale', 'logitBias'],
    detect: detectHfOnnx,
    async import(dir, out, options) {
      const plan = await importHfOnnx(dir, out, options);
      return describeHfPlan(plan, out).lines.join('\n');
    },
    describe(dir, options) {
      return describeHfPlan(planHfImport(dir, options));
    },
  },
];

function importerFor(dir: string, options: ImportOptions = {}): Importer {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`${dir} is not a folder`);
  const found = IMPORTERS.find((i) => i.detect(dir));
  if (!found) {
    const c = hfConfig(dir);
    const what = !c
      ? 'config.json: missing or not a JSON object (not a Hugging Face model folder?)'
      : `config.json: unknown architecture ${Array.isArray(c.architectures) && c.architectures.length ? c.architectures.join(', ') : `model_type ${JSON.stringify(c.model_type)}`}`;
    const problem = `${what} (supported: ${IMPORTERS.map((i) => i.supports).join('; ')})`;
    throw new MatchdError('MATCHD_MODEL_INVALID', `cannot import ${dir}: not a folder any importer understands: ${problem}`, { dir, problems: [problem] });
  }
  const foreign = (Object.keys(options) as (keyof ImportOptions)[]).filter((k) => options[k] !== undefined && k !== 'force' && !found.options.includes(k));
  if (foreign.length) throw new UsageError(`${dir} is a ${found.name}: it takes no ${foreign.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`);
  return found;
}

function numberOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`Expected a number for --${name} but received ${JSON.stringify(v)}`);
  return n;
}

function importOptions(values: Record<string, string | boolean | undefined>): ImportOptions {
  const variant = values.variant as string | undefined;
  if (variant !== undefined && !(variant in VARIANTS)) {
    throw new UsageError(`Expected one of ${Object.keys(VARIANTS).join(', ')} for --variant but received ${JSON.stringify(variant)}`);
  }
  const dtype = values.dtype as string | undefined;
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'float16') throw new UsageError(`Expected float32 or float16 for --dtype but received ${JSON.stringify(dtype)}`);
  const logitScale = numberOption('logit-scale', values['logit-scale'] as string | undefined);
  if (logitScale !== undefined && !(logitScale > 0)) throw new UsageError(`Expected a positive number for --logit-scale but received ${values['logit-scale']}`);
  return {
    variant: variant as Variant | undefined,
    dtype: dtype as ImportOptions['dtype'],
    name: values.name as string | undefined,
    logitScale,
    logitBias: numberOption('logit-bias', values['logit-bias'] as string | undefined),
  };
}

async function importCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      variant: { type: 'string' },
      dtype: { type: 'string' },
      name: { type: 'string' },
      force: { type: 'boolean', default: false },
      'logit-scale': { type: 'string' },
      'logit-bias': { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`model import takes one folder\n${modelUsage}`);
  if (!values.out) throw new UsageError(`model import needs --out PACKAGE_DIR\n${modelUsage}`);
  const dir = path.resolve(positionals[0]!);
  const options = importOptions(values);
  const summary = await importerFor(dir, options).import(dir, path.resolve(values.out), { ...options, force: values.force });
  process.stdout.write(summary + '\n');
  return 0;
}

async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, variant: { type: 'string' }, 'logit-scale': { type: 'string' }, 'logit-bias': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError(`model inspect takes one folder\n${modelUsage}`);
  const dir = path.resolve(positionals[0]!);
  const options = importOptions(values);
  const { lines, json } = fs.existsSync(path.join(dir, 'model.yaml')) ? describePackage(dir) : importerFor(dir, options).describe(dir, options);
  process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : lines.join('\n') + '\n');
  return 0;
}

export async function modelCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'import') return importCommand(rest);
  if (sub === 'inspect') return inspectCommand(rest);
  if (sub === 'quantize') return quantizeCommand(rest);
  throw new UsageError(sub === undefined ? `model needs a subcommand\n${modelUsage}` : `unknown model subcommand '${sub}'\n${modelUsage}`);
}
