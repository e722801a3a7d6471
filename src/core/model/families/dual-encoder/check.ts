/** The dual-encoder manifest against the ONNX graphs' real inputs and outputs: every mismatch listed. */
import type { IoMeta } from '../../../native.ts';
import type { DualEncoderManifest } from '../../manifest.ts';

function dims(shape: (number | null)[]): string {
  return `[${shape.map((d) => d ?? '?').join(', ')}]`;
}

/** Compare the manifest with the sessions' real metadata; returns every mismatch (empty when consistent). */
export function checkDualEncoder(m: DualEncoderManifest, image: { inputs: IoMeta[]; outputs: IoMeta[] }, text: { inputs: IoMeta[]; outputs: IoMeta[] }): string[] {
  const problems: string[] = [];
  const find = (list: IoMeta[], name: string) => list.find((io) => io.name === name);
  const names = (list: IoMeta[]) => list.map((io) => io.name).join(', ');
  const embeddingOk = (io: IoMeta, where: string) => {
    if (io.type !== 'float32' && io.type !== 'float16') problems.push(`${where}: output '${io.name}' is ${io.type}, expected float32 or float16`);
    const last = io.shape[io.shape.length - 1];
    if (io.shape.length !== 2) problems.push(`${where}: output '${io.name}' has shape ${dims(io.shape)}, expected [batch, ${m.embeddingSize}]`);
    else if (last !== null && last !== m.embeddingSize) problems.push(`${where}: output '${io.name}' has ${last} dims but embeddingSize is ${m.embeddingSize}`);
  };

  const px = find(image.inputs, m.image.input);
  if (!px) problems.push(`image.input: the image model has no input '${m.image.input}' (it has: ${names(image.inputs)})`);
  else {
    if (px.type !== m.image.dtype) problems.push(`image.dtype: manifest says ${m.image.dtype} but input '${px.name}' is ${px.type}`);
    if (px.shape.length !== 4) problems.push(`image.input: '${px.name}' has shape ${dims(px.shape)}, expected NCHW [batch, 3, height, width]`);
    else {
      const [, c, h, w] = px.shape;
      if (c !== null && c !== 3) problems.push(`image.input: '${px.name}' has ${c} channels, expected 3`);
      if (h !== null && h !== m.image.size.height) problems.push(`image.size.height: manifest says ${m.image.size.height} but the model takes ${h}`);
      if (w !== null && w !== m.image.size.width) problems.push(`image.size.width: manifest says ${m.image.size.width} but the model takes ${w}`);
    }
  }
  for (const io of image.inputs) {
    if (io.name !== m.image.input) problems.push(`image.model: input '${io.name}' is not fed by the manifest (only '${m.image.input}' is)`);
  }
  const imgOut = find(image.outputs, m.image.output);
  if (!imgOut) problems.push(`image.output: the image model has no output '${m.image.output}' (it has: ${names(image.outputs)})`);
  else embeddingOk(imgOut, 'image.output');

  const fed = [m.text.inputIds, ...(m.text.attentionMask ? [m.text.attentionMask] : [])];
  for (const [key, name] of [['text.inputIds', m.text.inputIds], ['text.attentionMask', m.text.attentionMask]] as const) {
    if (name === undefined) continue;
    const io = find(text.inputs, name);
    if (!io) problems.push(`${key}: the text model has no input '${name}' (it has: ${names(text.inputs)})`);
    else {
      if (io.type !== m.text.dtype) problems.push(`text.dtype: manifest says ${m.text.dtype} but input '${name}' is ${io.type}`);
      if (io.shape.length !== 2) problems.push(`${key}: '${name}' has shape ${dims(io.shape)}, expected [batch, sequence]`);
      else if (io.shape[1] !== null && m.text.padding !== 'max_length') {
        problems.push(`text.padding: '${name}' has a fixed length ${io.shape[1]}, so padding must be max_length`);
      } else if (io.shape[1] !== null && io.shape[1] !== m.text.maxLength) {
        problems.push(`text.maxLength: manifest says ${m.text.maxLength} but '${name}' takes ${io.shape[1]} tokens`);
      }
    }
  }
  for (const io of text.inputs) {
    if (!fed.includes(io.name)) problems.push(`text.model: input '${io.name}' is not fed by the manifest (set text.inputIds / text.attentionMask)`);
  }
  const txtOut = find(text.outputs, m.text.output);
  if (!txtOut) problems.push(`text.output: the text model has no output '${m.text.output}' (it has: ${names(text.outputs)})`);
  else embeddingOk(txtOut, 'text.output');
  return problems;
}
