/** What `matchd model inspect` (and `import`) print: a package's manifest and files, or an import plan. */
import fs from 'node:fs';
import path from 'node:path';
import type { HfPlan } from '../core/model/import/hf-onnx.ts';
import { manifestOf } from '../core/model/import/hf-write.ts';
import { externalFiles, readOnnx, type OnnxValueInfo } from '../core/model/import/onnx-file.ts';
import { ManifestSchema, type Manifest } from '../core/model/manifest.ts';
import { invalidPackage, readPackage } from '../core/model/package.ts';
import { zodProblems } from '../core/problems.ts';

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function io(v: OnnxValueInfo): string {
  return `${v.name} ${v.type} [${v.shape.map((d) => d ?? '?').join(', ')}]`;
}

/** One ONNX file: size (with external data), inputs → outputs. */
function fileLine(file: string): { line: string; json: unknown } {
  try {
    const m = readOnnx(file);
    const ext = externalFiles(m).map((e) => path.resolve(path.dirname(file), e));
    const extBytes = ext.reduce((a, e) => a + (fs.existsSync(e) ? fs.statSync(e).size : 0), 0);
    const size = ext.length ? `${mb(m.size)} + ${mb(extBytes)} external data` : mb(m.size);
    return {
      line: `${path.basename(file)} (${size}): ${m.inputs.map(io).join(', ')} → ${m.outputs.map(io).join(', ')}`,
      json: { file, bytes: m.size, externalData: ext, inputs: m.inputs.map(({ field: _, ...v }) => v), outputs: m.outputs.map(({ field: _, ...v }) => v) },
    };
  } catch (err) {
    return { line: `${path.basename(file)}: unreadable (${(err as Error).message})`, json: { file, error: (err as Error).message } };
  }
}

function round(x: number): string {
  return Number(x.toPrecision(5)).toString();
}

/** The manifest as readable lines (shared by packages and import plans). */
export function manifestLines(m: Manifest): string[] {
  const lines = [`name: ${m.name} (family ${m.family}, version ${m.version})`, `description: ${m.description}`, `embeddings: ${m.embeddingSize} dims`];
  if (m.family === 'dual-encoder') {
    const i = m.image;
    const resize = i.resize === 'shortest-edge-crop' ? `shortest edge ${i.shortestEdge ?? Math.max(i.size.width, i.size.height)}, centre crop` : i.resize;
    lines.push(
      `image: ${i.size.width}×${i.size.height}, ${resize}, ${i.resample}, scale ${round(i.scale)}, mean [${i.mean.map(round).join(', ')}], std [${i.std.map(round).join(', ')}], ${i.dtype} → ${i.output}`,
      `text: max ${m.text.maxLength} tokens, padding ${m.text.padding} with id ${m.text.padId}, ${m.text.dtype}${m.text.attentionMask ? ' with attention mask' : ', no attention mask'} → ${m.text.output}`,
    );
  }
  const s = m.score;
  lines.push(
    s.mapping === 'sigmoid'
      ? `score: sigmoid(${round(s.logitScale)} · cosine ${s.logitBias < 0 ? '−' : '+'} ${round(Math.abs(s.logitBias))})`
      : `score: linear, 0 at cosine ${s.range[0]} → 1 at ${s.range[1]}`,
  );
  const b = m.bands;
  lines.push(`bands (on the ${b.on}): ${b.list.map((x) => (x.min === undefined ? `${x.name} below` : `${x.name} ≥ ${x.min}`)).join(', ')}`);
  if (s.calibrated === false) {
    lines.push('calibration: NONE — the score mapping and bands are starting points; check them on a few of your own labelled images (README: "Use a real model")');
  }
  return lines;
}

/** `inspect PACKAGE`. */
export function describePackage(dir: string): { lines: string[]; json: unknown } {
  const pkg = readPackage(dir);
  const files = Object.entries(pkg.files).filter(([, f]) => f.endsWith('.onnx')).map(([key, f]) => ({ key, ...fileLine(f) }));
  return {
    lines: [`package: ${dir}`, ...manifestLines(pkg.manifest).map((l) => `  ${l}`), '  files:', ...files.map((f) => `    ${f.key}: ${f.line}`)],
    json: { dir, manifest: pkg.manifest, files: Object.fromEntries(files.map((f) => [f.key, f.json])), calibrated: pkg.manifest.score.calibrated !== false },
  };
}

/** `inspect DIR` (what an import would make) and the summary `import` prints. */
export function describeHfPlan(plan: HfPlan, out?: string): { lines: string[]; json: unknown } {
  const raw = manifestOf(plan);
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) throw invalidPackage(plan.dir, zodProblems(parsed.error, 'model.yaml (as it would be written)'));
  const manifest = parsed.data;
  const sources = plan.layout === 'split'
    ? `${path.relative(plan.dir, plan.image.source)} + ${path.relative(plan.dir, plan.text.source)}`
    : `${path.relative(plan.dir, plan.image.source)}, towers cut at image_embeds / text_embeds`;
  const l = plan.logits;
  const lines = [
    out ? `imported ${plan.dir} → ${path.resolve(out)}` : `${plan.dir}: importable (nothing written)`,
    `  source: model_type ${plan.modelType}, variant ${plan.variant}, ${plan.layout} layout: ${sources}`,
    `  logits: ${l ? `exp(logit_scale) = ${round(l.scale)}${l.bias !== null ? `, logit_bias = ${round(l.bias)}` : ''} (${l.source})` : 'none found'}`,
    ...manifestLines(manifest).map((x) => `  ${x}`),
    `  ONNX files in the folder: ${plan.available.join(', ')}`,
  ];
  return { lines, json: { dir: plan.dir, out: out ?? null, modelType: plan.modelType, variant: plan.variant, layout: plan.layout, logits: plan.logits, manifest: raw } };
}
