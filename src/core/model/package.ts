/**
 * A model package on disk: model.yaml plus the files its family names (ONNX graphs, tokenizer.json). Reading one
 * validates the manifest (schema) and checks that every named file exists, listing every problem; each family then
 * checks the manifest against the ONNX graphs' real inputs and outputs when it opens them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { MatchdError } from '../errors.ts';
import { problemsError, zodProblems } from '../problems.ts';
import { ManifestSchema, type Manifest } from './manifest.ts';

export interface ModelPackage<M extends Manifest = Manifest> {
  dir: string;
  manifest: M;
  /** Absolute paths of the package's files, by the manifest key that names them (e.g. `image.model`). */
  files: Record<string, string>;
}

/** MATCHD_MODEL_INVALID listing every problem with a package. */
export function invalidPackage(dir: string, problems: string[]): MatchdError {
  return problemsError('MATCHD_MODEL_INVALID', `model package ${dir} is invalid`, problems, { dir });
}

/** The files a manifest names, keyed by where it names them. */
function namedFiles(m: Manifest): Record<string, string> {
  if (m.family === 'gme-qwen2-vl') {
    return { 'gme.vision.model': m.gme.vision.model, 'gme.decoder.model': m.gme.decoder.model, 'gme.tokenizer': m.gme.tokenizer };
  }
  return { 'image.model': m.image.model, 'text.model': m.text.model, 'text.tokenizer': m.text.tokenizer };
}

/** Read and validate `dir/model.yaml` and check that the files it names exist. */
export function readPackage(dir: string): ModelPackage {
  const file = path.join(dir, 'model.yaml');
  let raw: unknown;
  try {
    raw = parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message;
    throw invalidPackage(dir, [`model.yaml: ${why}`]);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) throw invalidPackage(dir, zodProblems(parsed.error));
  const manifest = parsed.data;
  const files = Object.fromEntries(Object.entries(namedFiles(manifest)).map(([k, f]) => [k, path.resolve(dir, f)]));
  const missing = Object.entries(files).filter(([, f]) => !fs.existsSync(f)).map(([k, f]) => `${k}: file not found: ${f}`);
  if (missing.length) throw invalidPackage(dir, missing);
  return { dir, manifest, files };
}
