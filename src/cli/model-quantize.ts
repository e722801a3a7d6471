/**
 * `matchd model quantize PACKAGE --out PACKAGE_DIR`: the same package with int8 matrix-product weights.
 *
 * Every ONNX graph the manifest names goes through tools/quantize/quantize.py (Python: numpy + onnx; dynamic int8,
 * no calibration: see that tool for what is quantized and why). The new package is written to a temporary folder
 * beside `--out`: graphs, the other files the manifest names, model.yaml (name `-int8`, description saying so,
 * `gme.weights: int8` for GME), quantize.json (what was quantized, from what). It is then opened with the real
 * runtime, one image and one text are encoded and compared with the float32 package, and only then is the folder
 * renamed into place: `--out` is the old content or the whole new package, never half of one, also when interrupted.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { parseDocument } from 'yaml';
import { MatchdError } from '../core/errors.ts';
import { limitsFrom } from '../core/image/spec.ts';
import { openFamily, type FamilyModel } from '../core/model/families/index.ts';
import { invalidPackage, readPackage, type ModelPackage } from '../core/model/package.ts';
import { UsageError, packageRoot, positiveInt } from './args.ts';
import { findPython, runPythonTool } from './python.ts';

export const quantizeUsage = `matchd model quantize PACKAGE --out PACKAGE_DIR [--force] [--quantize-projection] [--min-elements N] [--no-compare]
  the same package with int8 weights in its matrix products (dynamic quantization, no calibration data):
  several times faster on CPUs with AVX-512 VNNI / AMX (BENCHMARKS.md), the package 2.5-3x smaller; see README for the accuracy cost.
      --quantize-projection   also the output projections (kept float32 by default, for accuracy)
      --min-elements N        smallest weight (rows x columns) worth quantizing (default 16384)
      --no-compare            skip encoding a sample with the float32 package for comparison
  needs Python 3 with numpy and onnx (Debian/Ubuntu: apt-get install python3-numpy python3-onnx)`;

export interface QuantizeOptions {
  force?: boolean;
  quantizeProjection?: boolean;
  minElements?: number;
  compare?: boolean;
}

/** The graph files of a package, by manifest key. */
function graphsOf(pkg: ModelPackage): [string, string][] {
  return Object.entries(pkg.files).filter(([key]) => key.endsWith('.model'));
}

/** A package file's path relative to the package, refused when it lies outside it (the copy could not follow). */
function inside(pkg: ModelPackage, file: string): string {
  const rel = path.relative(path.resolve(pkg.dir), file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw invalidPackage(pkg.dir, [`${file}: outside the package folder, so it cannot be quantized into a new package`]);
  }
  return rel;
}

/** One image and one text through a package, unit vectors. */
async function sample(dir: string): Promise<{ image: Float32Array; text: Float32Array }> {
  // No graph cache: this one load would write a copy of the weights, for a folder that is about to be renamed.
  const model: FamilyModel = await openFamily(readPackage(dir), { limits: limitsFrom(undefined), engine: { graphCache: false } });
  try {
    const png = await sharp({ create: { width: 96, height: 72, channels: 3, background: { r: 150, g: 90, b: 40 } } })
      .composite([{ input: { create: { width: 40, height: 30, channels: 3, background: { r: 20, g: 60, b: 200 } } }, left: 20, top: 16 }])
      .png().toBuffer();
    const [image] = await model.encodeImages([await model.prepareImage(png)]);
    const [text] = await model.encodeTexts(['a photo of a dog on a beach']);
    for (const [what, v] of [['image', image!], ['text', text!.vector]] as const) {
      if (!v.every(Number.isFinite)) throw new MatchdError('MATCHD_MODEL_INVALID', `the quantized package's ${what} embedding is not finite`);
    }
    return { image: image!, text: text!.vector };
  } finally {
    model.close();
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** model.yaml of the new package: the source's, comments kept, with the name, description and weights changed. */
function manifestText(pkg: ModelPackage): string {
  const doc = parseDocument(fs.readFileSync(path.join(pkg.dir, 'model.yaml'), 'utf8'));
  const m = pkg.manifest;
  doc.set('name', `${m.name}-int8`);
  const what = 'int8 weights in the matrix products (dynamic quantization by `matchd model quantize`; activations quantized per run)';
  doc.set('description', m.description ? `${m.description} — ${what}` : what);
  if (m.family === 'gme-qwen2-vl') doc.setIn(['gme', 'weights'], 'int8');
  const header = `# Quantized by \`matchd model quantize\` from ${path.resolve(pkg.dir)}; see quantize.json.\n`;
  return header + doc.toString({ lineWidth: 0 });
}

function checkOut(pkg: ModelPackage, out: string, force: boolean): void {
  if (path.resolve(out) === path.resolve(pkg.dir)) throw new UsageError('--out must not be the package being quantized');
  if (fs.existsSync(out)) {
    if (!fs.statSync(out).isDirectory()) throw new MatchdError('MATCHD_BAD_OPTION', `--out ${out} exists and is not a folder`, { out });
    if (fs.readdirSync(out).length && !force) throw new MatchdError('MATCHD_BAD_OPTION', `--out ${out} exists and is not empty (use --force to replace it)`, { out });
  }
  if (!fs.existsSync(path.dirname(out))) throw new MatchdError('MATCHD_BAD_OPTION', `--out ${out}: the folder ${path.dirname(out)} does not exist`, { out });
}

/** Move the finished folder into place; an existing `out` goes only once the new one is complete. */
function replace(tmp: string, out: string): void {
  if (!fs.existsSync(out)) {
    fs.renameSync(tmp, out);
    return;
  }
  const old = `${tmp}.old`;
  fs.renameSync(out, old);
  try {
    fs.renameSync(tmp, out);
  } catch (err) {
    fs.renameSync(old, out);
    throw err;
  }
  fs.rmSync(old, { recursive: true, force: true });
}

/** Quantize the package at `dir` into `out`; resolves with the summary to print. */
export async function quantizePackage(dir: string, out: string, options: QuantizeOptions = {}): Promise<string> {
  const started = Date.now();
  const pkg = readPackage(dir);
  const target = path.resolve(out);
  checkOut(pkg, target, !!options.force);
  const graphs = graphsOf(pkg).map(([key, file]) => ({ key, file, rel: inside(pkg, file) }));
  const others = Object.entries(pkg.files).filter(([key]) => !key.endsWith('.model')).map(([, file]) => inside(pkg, file));
  const python = findPython(['numpy', 'onnx'], 'apt-get install python3-numpy python3-onnx');
  const script = path.join(packageRoot, 'tools', 'quantize', 'quantize.py');

  // mkdir (not mkdtemp, which makes it 0700): the package keeps the permissions any new folder here gets.
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.quantizing-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(tmp);
  // Interrupted between Python runs (which handle signals themselves): remove the partial folder, then exit.
  let pythonRunning = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (pythonRunning) return; // the tool removes its files and exits; the error it reports cleans up below
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const reports: Record<string, unknown> = {};
    for (const g of graphs) {
      const dest = path.join(tmp, g.rel);
      const report = path.join(tmp, `.${g.key}.report.json`);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      const args = [g.file, dest, '--report', report];
      if (options.quantizeProjection) args.push('--quantize-projection');
      if (options.minElements !== undefined) args.push('--min-elements', String(options.minElements));
      pythonRunning = true;
      try {
        await runPythonTool(python, script, args, `quantizing ${g.rel}`, 'matchd: quantize: ');
      } finally {
        pythonRunning = false;
      }
      reports[g.key] = JSON.parse(fs.readFileSync(report, 'utf8'));
      fs.rmSync(report);
    }
    for (const rel of others) {
      fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
      fs.copyFileSync(path.join(pkg.dir, rel), path.join(tmp, rel));
    }
    if (fs.existsSync(path.join(pkg.dir, 'import.json'))) fs.copyFileSync(path.join(pkg.dir, 'import.json'), path.join(tmp, 'import.json'));
    fs.writeFileSync(path.join(tmp, 'model.yaml'), manifestText(pkg));

    process.stderr.write('matchd: quantize: checking the package with ONNX Runtime\n');
    const q = await sample(tmp);
    let agreement: { image: number; text: number; crossDelta: number } | null = null;
    if (options.compare !== false) {
      const f = await sample(pkg.dir);
      agreement = { image: dot(f.image, q.image), text: dot(f.text, q.text), crossDelta: Math.abs(dot(f.image, f.text) - dot(q.image, q.text)) };
    }
    const manifestHash = crypto.createHash('sha256').update(fs.readFileSync(path.join(pkg.dir, 'model.yaml'))).digest('hex');
    fs.writeFileSync(path.join(tmp, 'quantize.json'), JSON.stringify({
      format: 1,
      tool: { name: 'matchd model quantize', script: 'tools/quantize/quantize.py' },
      source: { dir: path.resolve(pkg.dir), name: pkg.manifest.name, version: pkg.manifest.version, manifestSha256: manifestHash },
      options: { quantizeProjection: !!options.quantizeProjection, minElements: options.minElements ?? 16384 },
      graphs: reports,
      sample: agreement,
      createdAt: new Date().toISOString(),
      seconds: Math.round((Date.now() - started) / 100) / 10,
    }, null, 2) + '\n');
    replace(tmp, target);
    const lines = [`${out}: int8 package written in ${((Date.now() - started) / 1000).toFixed(1)} s (name ${pkg.manifest.name}-int8)`];
    for (const g of graphs) {
      const r = reports[g.key] as { quantized: number; products: unknown[]; bytesBefore: number; bytesAfter: number };
      lines.push(`  ${g.rel}: ${r.quantized} of ${r.products.length} weight products int8, ${(r.bytesBefore / 1e6).toFixed(1)} → ${(r.bytesAfter / 1e6).toFixed(1)} MB`);
    }
    if (agreement) {
      lines.push(`  sample vs float32: image embedding cosine ${agreement.image.toFixed(5)}, text ${agreement.text.toFixed(5)}, ` +
        `image–text cosine changed by ${agreement.crossDelta.toFixed(5)}`);
    }
    return lines.join('\n');
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `matchd model quantize ...` */
export async function quantizeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      force: { type: 'boolean', default: false },
      'quantize-projection': { type: 'boolean', default: false },
      'min-elements': { type: 'string' },
      'no-compare': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`model quantize takes one package folder\n${quantizeUsage}`);
  if (!values.out) throw new UsageError(`model quantize needs --out PACKAGE_DIR\n${quantizeUsage}`);
  const summary = await quantizePackage(path.resolve(positionals[0]!), path.resolve(values.out), {
    force: values.force,
    quantizeProjection: values['quantize-projection'],
    minElements: positiveInt('min-elements', values['min-elements']),
    compare: !values['no-compare'],
  });
  process.stdout.write(summary + '\n');
  return 0;
}
