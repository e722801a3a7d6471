/**
 * Cut one tower out of a combined CLIP / SigLIP `model.onnx` (the graph that computes both embeddings and the
 * logits): keep the nodes the chosen output depends on, the initializers and inputs they read, and write them as a
 * new model. Every kept field is copied byte for byte from the source (weights are streamed, never parsed), so the
 * tower computes exactly what it computed inside the combined graph. Initializers stored as external data keep
 * their references: the data file must sit next to the new model too (the importer copies it).
 *
 * Why cut rather than run the combined graph: it needs both pixel_values and input_ids on every run, so each text
 * batch would also pay for a dummy image through the vision tower (and each image batch for a dummy text).
 */
import fs from 'node:fs';
import type { OnnxFile, OnnxNode, Span } from './onnx-file.ts';

export interface Tower {
  /** Graph inputs the tower reads. */
  inputs: string[];
  nodes: OnnxNode[];
  initializers: string[];
}

/** The part of the graph `output` depends on. Throws when a name it needs is produced by nothing. */
export function towerOf(m: OnnxFile, output: string): Tower {
  const producer = new Map<string, OnnxNode>();
  for (const n of m.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const graphInputs = new Set(m.inputs.map((i) => i.name));
  const keep = new Set<OnnxNode>();
  const inputs = new Set<string>();
  const inits = new Set<string>();
  const todo = [output];
  const seen = new Set<string>();
  while (todo.length) {
    const name = todo.pop()!;
    if (!name || seen.has(name)) continue;
    seen.add(name);
    if (graphInputs.has(name)) inputs.add(name);
    else if (m.initializers.has(name)) inits.add(name);
    else {
      const n = producer.get(name);
      if (n) {
        if (!keep.has(n)) {
          keep.add(n);
          todo.push(...n.inputs, ...n.captured);
        }
      } else if (name === output) throw new Error(`no node produces '${output}'`);
      // else: a name local to a subgraph (captured lists every name a subgraph reads); not an outer dependency
    }
  }
  return {
    inputs: m.inputs.filter((i) => inputs.has(i.name)).map((i) => i.name),
    nodes: m.nodes.filter((n) => keep.has(n)), // source order is a valid topological order
    initializers: [...m.initializers.keys()].filter((k) => inits.has(k)),
  };
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function len(s: Span): number {
  return s.end - s.start;
}

/** Write the tower computing `output` as a standalone model at `dest`. */
export function writeTower(m: OnnxFile, output: string, dest: string): Tower {
  const tower = towerOf(m, output);
  const out = m.outputs.find((o) => o.name === output);
  if (!out) throw new Error(`'${output}' is not an output of ${m.path}`);
  const kept = new Set([...tower.inputs, ...tower.initializers, ...tower.nodes.flatMap((n) => n.outputs)]);
  const graphSpans: Span[] = [
    ...tower.nodes.map((n) => n.field),
    ...m.graphFields.map((g) => g.span), // name, doc string, sparse initializers, annotations
    ...tower.initializers.map((k) => m.initializers.get(k)!.field),
    ...m.inputs.filter((i) => tower.inputs.includes(i.name)).map((i) => i.field),
    out.field,
    ...m.valueInfo.filter((v) => kept.has(v.name)).map((v) => v.field),
  ];
  const graphLength = graphSpans.reduce((a, s) => a + len(s), 0);
  const fdIn = fs.openSync(m.path, 'r');
  const fdOut = fs.openSync(dest, 'w');
  try {
    const copy = (s: Span) => {
      const chunk = Buffer.allocUnsafe(Math.min(len(s), 1 << 24));
      for (let p = s.start; p < s.end;) {
        const n = fs.readSync(fdIn, chunk, 0, Math.min(chunk.length, s.end - p), p);
        if (n <= 0) throw new Error(`unexpected end of ${m.path}`);
        fs.writeSync(fdOut, chunk, 0, n);
        p += n;
      }
    };
    for (const f of m.modelFields) copy(f.span);
    fs.writeSync(fdOut, Buffer.concat([Buffer.from([(7 << 3) | 2]), varint(graphLength)]));
    for (const s of graphSpans) copy(s);
  } finally {
    fs.closeSync(fdIn);
    fs.closeSync(fdOut);
  }
  return tower;
}
