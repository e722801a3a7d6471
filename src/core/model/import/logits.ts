/**
 * Where a combined CLIP / SigLIP export keeps its calibration: not in config.json (CLIP's logit_scale_init_value is
 * the value training started from), but in the graph that computes `logits_per_text`:
 *
 *     logits_per_text = MatMul(text_embeds, image_embedsᵀ) · exp(logit_scale) [+ logit_bias]     (SigLIP adds bias)
 *     logits_per_image = Transpose(logits_per_text)
 *
 * The exporters keep logit_scale and logit_bias as scalar initializers (trainable parameters are not folded), with an
 * Exp node in between; a folded export has exp(logit_scale) as one constant instead. Both are read here by walking
 * back from the logits output through Transpose / Add / Mul / Exp to MatMul.
 */
import path from 'node:path';
import type { Logits } from './calibration.ts';
import { readScalar, type OnnxFile, type OnnxNode } from './onnx-file.ts';

/** A scalar constant behind `name`: an initializer, a Constant node, or Exp of either (then exponentiated). */
function constant(m: OnnxFile, producer: Map<string, OnnxNode>, name: string): { value: number; label: string } | null {
  const init = m.initializers.get(name);
  if (init) {
    const v = readScalar(m, init);
    return v === null ? null : { value: v, label: name };
  }
  const n = producer.get(name);
  if (!n) return null;
  if (n.opType === 'Constant' && n.value) {
    const v = readScalar(m, n.value);
    return v === null ? null : { value: v, label: n.name || name };
  }
  if (n.opType === 'Exp' && n.inputs.length === 1) {
    const inner = constant(m, producer, n.inputs[0]!);
    return inner ? { value: Math.exp(inner.value), label: `exp(${inner.label})` } : null;
  }
  if ((n.opType === 'Identity' || n.opType === 'Cast') && n.inputs.length === 1) return constant(m, producer, n.inputs[0]!);
  return null;
}

/** The logit scale (and bias) of a combined model, or null when its logits are not computed that way. */
export function findLogits(m: OnnxFile): Logits | null {
  const producer = new Map<string, OnnxNode>();
  for (const n of m.nodes) for (const o of n.outputs) producer.set(o, n);
  let name = m.outputs.some((o) => o.name === 'logits_per_text') ? 'logits_per_text' : 'logits_per_image';
  if (!m.outputs.some((o) => o.name === name)) return null;
  let scale: { value: number; label: string } | null = null;
  let bias: { value: number; label: string } | null = null;
  for (let steps = 0; steps < 16; steps++) {
    const n = producer.get(name);
    if (!n) return null;
    if (n.opType === 'MatMul' || n.opType === 'Gemm') break;
    if (n.opType === 'Transpose' || n.opType === 'Identity') {
      name = n.inputs[0]!;
      continue;
    }
    if ((n.opType === 'Add' || n.opType === 'Mul') && n.inputs.length === 2) {
      const [a, b] = n.inputs.map((i) => constant(m, producer, i));
      const c = a ?? b;
      if (!c || (a && b)) return null;
      if (n.opType === 'Add') bias = c;
      else scale = c;
      name = a ? n.inputs[1]! : n.inputs[0]!;
      continue;
    }
    return null;
  }
  if (!scale) return null;
  const labels = [scale.label, ...(bias ? [bias.label] : [])].join(', ');
  return { scale: scale.value, bias: bias?.value ?? null, source: `${path.basename(m.path)}: ${labels}` };
}
