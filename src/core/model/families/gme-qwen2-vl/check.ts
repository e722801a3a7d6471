/** The GME manifest against the vision and decoder graphs' real inputs and outputs: every mismatch listed. */
import type { IoMeta } from '../../../native.ts';
import type { GmeManifest } from '../../manifest.ts';

interface Graph {
  inputs: IoMeta[];
  outputs: IoMeta[];
}

/** What one named input or output must look like: element type, rank, and fixed sizes where known (null: any). */
type Want = [key: string, name: string, type: string, shape: (number | null)[]];

function checkGraph(graph: Graph, where: string, inputs: Want[], outputs: Want[], problems: string[]): void {
  const dims = (s: (number | null)[]) => `[${s.map((d) => d ?? '?').join(', ')}]`;
  const one = (list: IoMeta[], kind: string, [key, name, type, shape]: Want) => {
    const io = list.find((x) => x.name === name);
    if (!io) return problems.push(`${key}: the ${where} graph has no ${kind} '${name}' (it has: ${list.map((x) => x.name).join(', ')})`);
    if (io.type !== type) problems.push(`${key}: '${name}' is ${io.type}, expected ${type}`);
    if (io.shape.length !== shape.length) return problems.push(`${key}: '${name}' has shape ${dims(io.shape)}, expected ${dims(shape)}`);
    shape.forEach((want, i) => {
      const got = io.shape[i];
      if (want !== null && got !== null && got !== want) problems.push(`${key}: '${name}' has ${got} at axis ${i}, expected ${want}`);
    });
  };
  for (const w of inputs) one(graph.inputs, 'input', w);
  for (const w of outputs) one(graph.outputs, 'output', w);
  const fed = inputs.map((w) => w[1]);
  for (const io of graph.inputs) if (!fed.includes(io.name)) problems.push(`gme.${where}: input '${io.name}' is not fed by the manifest`);
}

export function checkGme(m: GmeManifest, vision: Graph, decoder: Graph): string[] {
  const problems: string[] = [];
  const { vision: v, decoder: d, image } = m.gme;
  const patch = 3 * image.temporalPatchSize * image.patchSize * image.patchSize;
  const h = m.embeddingSize;
  checkGraph(vision, 'vision', [
    ['gme.vision.pixelValues', v.pixelValues, 'float32', [null, null, patch]],
    ['gme.vision.positionIds', v.positionIds, 'int64', [null, 2]],
  ], [['gme.vision.output', v.output, 'float32', [null, null, h]]], problems);
  checkGraph(decoder, 'decoder', [
    ['gme.decoder.inputIds', d.inputIds, 'int64', [null, null]],
    ['gme.decoder.attentionMask', d.attentionMask, 'int64', [null, null]],
    ['gme.decoder.imageEmbeds', d.imageEmbeds, 'float32', [null, h]],
  ], [['gme.decoder.output', d.output, 'float32', [null, h]]], problems);
  return problems;
}
