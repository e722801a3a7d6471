/**
 * `matchd model import CHECKPOINT_DIR --out PACKAGE_DIR [--dtype float32|float16] [--force]`: turn a downloaded
 * checkpoint into a model package. A small table recognises the checkpoint and picks its importer; today one:
 * Qwen2-VL checkpoints (GME-Qwen2-VL-2B/7B-Instruct) -> tools/gme/export.py.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MatchdError } from '../core/errors.ts';
import { UsageError, packageRoot } from './args.ts';
import { findPython, runPythonTool } from './python.ts';

export const modelUsage = `matchd model import CHECKPOINT_DIR --out PACKAGE_DIR [--dtype float32|float16] [--force]
  turn a downloaded checkpoint into a model package (supported: GME-Qwen2-VL, i.e. Qwen2VLForConditionalGeneration)
  --dtype D          package weights: float32 (default) or float16 (half the size; inputs/outputs stay float32)
  --force            replace a non-empty PACKAGE_DIR
  needs Python 3 with numpy and onnx (Debian/Ubuntu: apt-get install python3-numpy python3-onnx);
  MATCHD_PYTHON picks the interpreter`;

/** The parts of a Hugging Face config.json the table looks at. */
interface HfConfig {
  architectures?: unknown;
  model_type?: unknown;
}

interface ImportOptions {
  out: string;
  dtype: 'float32' | 'float16';
  force: boolean;
}

interface Importer {
  /** What it imports, for messages. */
  label: string;
  /** Architecture names it supports (listed when nothing matches). */
  architectures: string[];
  detect(config: HfConfig): boolean;
  run(dir: string, options: ImportOptions): Promise<void>;
}

const IMPORTERS: Importer[] = [
  {
    label: 'GME-Qwen2-VL checkpoint',
    architectures: ['Qwen2VLForConditionalGeneration'],
    detect: (c) => (Array.isArray(c.architectures) && c.architectures.includes('Qwen2VLForConditionalGeneration')) || c.model_type === 'qwen2_vl',
    async run(dir, { out, dtype, force }) {
      const python = findPython(['numpy', 'onnx'], 'apt-get install python3-numpy python3-onnx');
      const script = path.join(packageRoot, 'tools', 'gme', 'export.py');
      const args = [dir, '--out', out, '--dtype', dtype, ...(force ? ['--force'] : [])];
      await runPythonTool(python, script, args, dir, 'matchd: import: ');
    },
  },
];

function readConfig(dir: string): HfConfig {
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new MatchdError('MATCHD_MODEL_INVALID', `${dir}: not a directory`, { problems: [`${dir}: not a directory`] });
  }
  const file = path.join(dir, 'config.json');
  let config: unknown;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (not a Hugging Face checkpoint folder?)' : `unreadable (${(err as Error).message})`;
    throw new MatchdError('MATCHD_MODEL_INVALID', `${dir}: config.json ${why}`, { problems: [`config.json: ${why}`] });
  }
  if (typeof config !== 'object' || config === null) {
    throw new MatchdError('MATCHD_MODEL_INVALID', `${dir}: config.json is not a JSON object`, { problems: ['config.json: not a JSON object'] });
  }
  return config as HfConfig;
}

/** The importer for a checkpoint folder, or MATCHD_MODEL_INVALID naming what it is and what is supported. */
export function pickImporter(dir: string): Importer {
  const config = readConfig(dir);
  const importer = IMPORTERS.find((i) => i.detect(config));
  if (importer) return importer;
  const found = Array.isArray(config.architectures) && config.architectures.length ? config.architectures.join(', ') : `model_type ${JSON.stringify(config.model_type)}`;
  const problem = `config.json: unknown architecture ${found} (supported: ${IMPORTERS.flatMap((i) => i.architectures).join(', ')})`;
  throw new MatchdError('MATCHD_MODEL_INVALID', `${dir}: ${problem}`, { problems: [problem] });
}

async function importCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: 'string' }, dtype: { type: 'string' }, force: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError(`model import takes one CHECKPOINT_DIR\n${modelUsage}`);
  if (!values.out) throw new UsageError(`model import needs --out PACKAGE_DIR\n${modelUsage}`);
  const dtype = values.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') throw new UsageError(`Expected float32 or float16 for --dtype but received ${JSON.stringify(dtype)}`);
  const dir = path.resolve(positionals[0]!);
  const out = path.resolve(values.out);
  const importer = pickImporter(dir);
  const started = Date.now();
  process.stderr.write(`matchd: importing ${dir} (${importer.label}) into ${out} as ${dtype}\n`);
  await importer.run(dir, { out, dtype, force: values.force });
  process.stdout.write(`${out}: model package written in ${((Date.now() - started) / 1000).toFixed(1)} s; point model.dir (or --model) at it\n`);
  return 0;
}

export async function modelCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'import') return importCommand(rest);
  throw new UsageError(sub === undefined ? `model needs a subcommand\n${modelUsage}` : `unknown model subcommand '${sub}'\n${modelUsage}`);
}
