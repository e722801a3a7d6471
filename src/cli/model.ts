/**
 * `matchd model import DIR --out PACKAGE_DIR [--variant fp32|fp16|quantized]` and `matchd model inspect PACKAGE|DIR`.
 *
 * Each importer is one row of IMPORTERS: a detector for the folders it understands, the import itself and a plan
 * reader for `inspect`. The first row whose detector accepts the folder handles it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MatchdError } from '../core/errors.ts';
import { detectHfOnnx, planHfImport, VARIANTS, type HfImportOptions, type Variant } from '../core/model/import/hf-onnx.ts';
import { importHfOnnx } from '../core/model/import/hf-write.ts';
import { UsageError } from './args.ts';
import { describeHfPlan, describePackage } from './model-inspect.ts';

export const modelUsage = `matchd model import DIR --out PACKAGE_DIR [--variant fp32|fp16|quantized] [--name NAME] [--force]
                  [--logit-scale X --logit-bias=B]   (B is usually negative: write it with =)
  make a model package from a downloaded model folder (transformers.js / optimum ONNX exports of CLIP or SigLIP)
matchd model inspect PACKAGE|DIR [--variant V] [--json]
  what a package holds, or what an import of DIR would make`;

interface Importer {
  name: string;
  /** The folders this importer understands (cheap: file names and config.json only). */
  detect(dir: string): boolean;
  import(dir: string, out: string, options: HfImportOptions & { force?: boolean }): Promise<string>;
  /** What an import would make, as lines (inspect); throws MATCHD_MODEL_INVALID listing every problem. */
  describe(dir: string, options: HfImportOptions): { lines: string[]; json: unknown };
}

const IMPORTERS: Importer[] = [
  {
    name: 'Hugging Face ONNX export (CLIP, SigLIP)',
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

function importerFor(dir: string): Importer {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`${dir} is not a folder`);
  const found = IMPORTERS.find((i) => i.detect(dir));
  if (found) return found;
  throw new MatchdError(
    'MATCHD_MODEL_INVALID',
    `cannot import ${dir}: not a folder any importer understands (expected config.json with ONNX files under onnx/; importers: ${IMPORTERS.map((i) => i.name).join('; ')})`,
    { dir, problems: ['no importer recognises this folder'] },
  );
}

function numberOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`Expected a number for --${name} but received ${JSON.stringify(v)}`);
  return n;
}

function importOptions(values: Record<string, string | boolean | undefined>): HfImportOptions {
  const variant = values.variant as string | undefined;
  if (variant !== undefined && !(variant in VARIANTS)) {
    throw new UsageError(`Expected one of ${Object.keys(VARIANTS).join(', ')} for --variant but received ${JSON.stringify(variant)}`);
  }
  const logitScale = numberOption('logit-scale', values['logit-scale'] as string | undefined);
  if (logitScale !== undefined && !(logitScale > 0)) throw new UsageError(`Expected a positive number for --logit-scale but received ${values['logit-scale']}`);
  return {
    variant: variant as Variant | undefined,
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
      name: { type: 'string' },
      force: { type: 'boolean', default: false },
      'logit-scale': { type: 'string' },
      'logit-bias': { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`model import takes one folder\n${modelUsage}`);
  if (!values.out) throw new UsageError('model import needs --out PACKAGE_DIR');
  const dir = path.resolve(positionals[0]!);
  const summary = await importerFor(dir).import(dir, values.out, { ...importOptions(values), force: values.force });
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
  const { lines, json } = fs.existsSync(path.join(dir, 'model.yaml')) ? describePackage(dir) : importerFor(dir).describe(dir, importOptions(values));
  process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : lines.join('\n') + '\n');
  return 0;
}

export async function modelCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'import') return importCommand(rest);
  if (sub === 'inspect') return inspectCommand(rest);
  throw new UsageError(sub === undefined ? `model needs a subcommand\n${modelUsage}` : `unknown model subcommand '${sub}'\n${modelUsage}`);
}
